"""Tokens: signed, expiring, carrying role, unit and jurisdiction."""
import jwt
import pytest

from services.api.auth import Role, mint, verify
from spkt.settings import Settings


@pytest.fixture
def settings(tmp_path):
    return Settings(state_dir=tmp_path, jwt_secret="k" * 40)


def test_a_minted_token_verifies_with_its_claims(settings):
    principal = verify(settings, mint(settings, sub="p1", role=Role.field_unit, unit_id="u-7", jurisdiction="JKS"))
    assert (principal.sub, principal.role, principal.unit_id, principal.jurisdiction) == ("p1", Role.field_unit,
                                                                                          "u-7", "JKS")


def test_expired_tampered_and_foreign_tokens_are_refused(settings):
    with pytest.raises(ValueError, match="expired"):
        verify(settings, mint(settings, sub="p", role=Role.admin, ttl_s=-10))
    token = mint(settings, sub="p", role=Role.call_taker)
    head, body, sig = token.split(".")
    with pytest.raises(ValueError, match="invalid"):
        verify(settings, f"{head}.{body}x.{sig}")
    foreign = jwt.encode({"sub": "p", "role": "admin", "exp": 2**40, "iss": "spkt-dispatch"}, "other" * 10,
                         algorithm="HS256")
    with pytest.raises(ValueError, match="invalid"):
        verify(settings, foreign)


def test_a_field_unit_token_needs_its_unit(settings):
    with pytest.raises(ValueError, match="unit_id"):
        mint(settings, sub="p", role=Role.field_unit)


def test_without_a_configured_secret_one_is_made_once_and_kept(tmp_path):
    a, b = Settings(state_dir=tmp_path), Settings(state_dir=tmp_path)
    assert a.signing_key() == b.signing_key() and len(a.signing_key()) > 40
    assert (tmp_path / "jwt-secret").stat().st_mode & 0o777 == 0o600


def test_production_takes_the_token_key_from_the_environment_only(tmp_path):
    from spkt.settings import MissingSecret

    with pytest.raises(MissingSecret, match="SPKT_JWT_SECRET is not set"):
        Settings(state_dir=tmp_path, secrets_from_environment=True).signing_key()
    assert not (tmp_path / "jwt-secret").exists()  # nothing made up on disk
    with pytest.raises(MissingSecret, match="shorter"):
        Settings(state_dir=tmp_path, secrets_from_environment=True, jwt_secret="short").signing_key()
    key = "k" * 40
    assert Settings(state_dir=tmp_path, secrets_from_environment=True, jwt_secret=key).signing_key() == key
