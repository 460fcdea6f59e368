"""The API's kept incident pages (services/api/pages.py): when a kept page may be answered."""
from services.api.pages import PageKeeper


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def builder(pages: list[bytes]):
    made = iter(pages)
    built = []

    def build() -> bytes:
        built.append(next(made))
        return built[-1]

    return build, built


def test_a_page_is_kept_while_its_revision_stands_and_built_again_for_a_new_one():
    keeper = PageKeeper(kept=10, max_age_s=30, clock=Clock())
    build, built = builder([b"v1", b"v2"])
    assert keeper.page("inc-1", "r1", build) == b"v1"
    assert keeper.page("inc-1", "r1", build) == b"v1"
    assert keeper.page("inc-1", "r2", build) == b"v2"
    assert keeper.page("inc-1", "r2", build) == b"v2"
    assert built == [b"v1", b"v2"]


def test_a_page_is_built_again_after_its_age_even_unchanged():
    clock = Clock()
    keeper = PageKeeper(kept=10, max_age_s=30, clock=clock)
    build, built = builder([b"v1", b"v1 checked again"])
    keeper.page("inc-1", "r1", build)
    clock.now += 29.9
    assert keeper.page("inc-1", "r1", build) == b"v1"
    clock.now += 0.2
    assert keeper.page("inc-1", "r1", build) == b"v1 checked again"
    assert len(built) == 2


def test_an_incident_without_a_revision_is_built_on_every_read():
    """Incidents from before migration 0006 have none until the projection next changes them."""
    keeper = PageKeeper(kept=10, max_age_s=30, clock=Clock())
    build, built = builder([b"a", b"b"])
    assert [keeper.page("inc-1", None, build) for _ in range(2)] == [b"a", b"b"]
    assert len(keeper) == 0


def test_beyond_the_limit_the_page_built_longest_ago_goes():
    keeper = PageKeeper(kept=2, max_age_s=30, clock=Clock())
    build, built = builder([b"1", b"2", b"3", b"1 again", b"2 again"])
    for incident_id in ("inc-1", "inc-2", "inc-3"):
        keeper.page(incident_id, "r", build)
    assert len(keeper) == 2
    assert keeper.page("inc-3", "r", build) == b"3"      # kept
    assert keeper.page("inc-1", "r", build) == b"1 again"  # gone, built again (inc-2 goes now)
    assert keeper.page("inc-2", "r", build) == b"2 again"
    assert built == [b"1", b"2", b"3", b"1 again", b"2 again"]


def test_none_are_kept_when_the_limit_is_zero():
    keeper = PageKeeper(kept=0, max_age_s=30, clock=Clock())
    build, built = builder([b"a", b"b"])
    assert [keeper.page("inc-1", "r1", build) for _ in range(2)] == [b"a", b"b"]


def test_only_tokens_needing_no_more_than_a_jurisdiction_check_are_answered_ahead_of_the_route(tmp_path):
    from services.api.auth import Role, mint
    from services.api.pages import IncidentPages
    from spkt.settings import Settings

    settings = Settings(state_dir=tmp_path, jwt_secret="k" * 40)
    pages = IncidentPages(app=None, build=None)

    def stations(value: str | None):
        headers = [(b"accept", b"application/json")] + ([(b"authorization", value.encode())] if value else [])
        return pages._stations_of(settings, headers)

    dispatcher = mint(settings, sub="d", role=Role.dispatcher)
    assert stations(f"Bearer {dispatcher}") is None  # no jurisdiction: everywhere
    assert stations(f"bearer  {dispatcher} ") is None  # as FastAPI's HTTPBearer reads it
    jaksel = stations(f"Bearer {mint(settings, sub='c', role=Role.command_center, jurisdiction='polres-jaksel')}")
    assert "polres-jaksel" in jaksel and "polres-jakut" not in jaksel and len(jaksel) > 1  # with its Polsek
    # The route answers these: 401, or a field unit's assignment to check.
    assert stations(None) is False
    assert stations(f"Basic {dispatcher}") is False
    assert stations(f"Bearer {dispatcher}x") is False
    assert stations(f"Bearer {mint(settings, sub='u', role=Role.field_unit, unit_id='u-1')}") is False
