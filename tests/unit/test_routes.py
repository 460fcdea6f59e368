"""Every API endpoint declares the roles it admits (API.md: Authentication and roles)."""
from fastapi.routing import APIRoute

from services.api.auth import Role
from services.api.main import ROUTERS

PUBLIC = {"/healthz", "/readyz", "/metrics", "/track/{tracking_code}",
          "/api/v1/inbound/messages"}  # gateways sign the body with their secret instead


def declared_roles(dependant) -> set[Role] | None:
    for dep in dependant.dependencies:
        roles = getattr(dep.call, "allowed_roles", None) or declared_roles(dep)
        if roles:
            return set(roles)
    return None


def test_every_api_route_declares_its_roles():
    routes = [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]
    assert len(routes) >= 8
    undeclared = [r.path for r in routes if r.path not in PUBLIC and not declared_roles(r.dependant)]
    assert undeclared == []
    by_path = {(next(iter(r.methods)), r.path): declared_roles(r.dependant) for r in routes}
    assert Role.command_center not in by_path[("POST", "/api/v1/reports")]  # reads everything, writes nothing
    assert Role.call_taker in by_path[("POST", "/api/v1/reports")]
    assert Role.field_unit not in by_path[("GET", "/api/v1/units")]


def test_the_openapi_document_lists_every_route_with_bearer_security():
    from services.api.main import create_app
    from spkt.settings import Settings

    doc = create_app(Settings(jwt_secret="x" * 40)).openapi()
    for path in ("/api/v1/reports", "/api/v1/reports/{report_id}", "/api/v1/incidents/{incident_id}",
                 "/api/v1/incidents/{incident_id}/recommendations", "/api/v1/units", "/healthz", "/readyz"):
        assert path in doc["paths"], path
    assert doc["paths"]["/api/v1/reports"]["post"]["security"] == [{"HTTPBearer": []}]
    assert "503" in doc["paths"]["/api/v1/reports"]["post"]["responses"]


def test_every_request_body_in_the_openapi_document_has_an_example_that_is_valid():
    import services.api.models as models
    from services.api.main import create_app
    from spkt.settings import Settings

    doc = create_app(Settings(jwt_secret="x" * 40)).openapi()
    bodies = {op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
              for ops in doc["paths"].values() for op in ops.values()
              if "application/json" in op.get("requestBody", {}).get("content", {})}
    assert len(bodies) >= 20
    missing = [name for name in sorted(bodies) if not doc["components"]["schemas"][name].get("examples")]
    assert missing == []
    for name in bodies:  # an example a client copies must be accepted
        model = getattr(models, name)
        for example in doc["components"]["schemas"][name]["examples"]:
            model.model_validate(example)
