"""A projector that checks its own revisions: the API keeps an incident's page while the
incident's revision stands (services/api/pages.py), so an event that changes what a page shows
without giving that incident a new revision would leave consoles reading an old page."""
from __future__ import annotations

from sqlalchemy import select

from services.api.routes.incidents import incident_page
from services.projection import tables as t
from services.projection.projector import Projector


class PageWatchingProjector(Projector):
    """Projector.apply, then: every incident whose page changed has a new revision."""

    def apply(self, envelope, event, **where) -> bool:
        before = self.pages()
        applied = super().apply(envelope, event, **where)
        after = self.pages()
        stale = [incident_id for incident_id, (revision, page) in after.items()
                 if incident_id in before and before[incident_id] != (revision, page)
                 and before[incident_id][0] == revision]
        assert not stale, f"{envelope.type} changed the page of {stale} and left its revision"
        self.pages_checked += len(after)
        return applied

    pages_checked = 0

    def pages(self) -> dict[str, tuple[str | None, bytes]]:
        with self.sessions() as s:
            stamps = s.execute(select(t.Incident.incident_id, t.Incident.revision)).all()
            return {row.incident_id: (row.revision, incident_page(s, row.incident_id)) for row in stamps}
