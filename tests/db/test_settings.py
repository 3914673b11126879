from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.settings import Settings, get_settings, make_settings


def test_defaults_without_environment() -> None:
    s = make_settings()
    assert s.database_url == "sqlite:///./.posventa/posventa.db"
    assert s.timezone == "Europe/Madrid"
    assert s.uses_dev_secret
    assert s.sendgrid_api_key is None
    assert s.sendgrid_timeout == 10
    assert s.batch_size == 500
    assert s.prefect_api_url is None
    assert any("SECRET_KEY" in w for w in s.warnings())


def test_environment_prefix_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("POSVENTA_TIMEZONE=America/Mexico_City\nPOSVENTA_BATCH_SIZE=50\n")
    monkeypatch.setenv("POSVENTA_SENDGRID_API_KEY", "SG.very-secret")
    monkeypatch.setenv("POSVENTA_SECRET_KEY", "x" * 40)
    monkeypatch.setenv("POSVENTA_SENDGRID_ASM_GROUP_ID", "42")
    s = Settings()
    assert s.timezone == "America/Mexico_City"
    assert s.batch_size == 50
    assert s.sendgrid_asm_group_id == 42
    assert s.sendgrid_api_key is not None
    assert s.sendgrid_api_key.get_secret_value() == "SG.very-secret"
    assert not s.uses_dev_secret
    # Secrets never print.
    assert "very-secret" not in repr(s) and "very-secret" not in str(s.model_dump())
    assert "x" * 40 not in repr(s)
    # Explicit settings ignore the environment.
    assert make_settings().timezone == "Europe/Madrid"
    assert make_settings(read_environment=True).timezone == "America/Mexico_City"


def test_bad_timezone_is_refused() -> None:
    with pytest.raises(ValidationError, match="IANA"):
        make_settings(timezone="Europe/Madird")


def test_get_settings_is_cached(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    try:
        assert get_settings() is get_settings()
    finally:
        get_settings.cache_clear()


def test_exactly_once_settings_warn_about_resends() -> None:
    from infra.settings import make_settings

    quiet = make_settings()
    assert not [w for w in quiet.warnings() if "UNKNOWN" in w or "RECONCILE" in w]
    assert quiet.resend_unknown_after_minutes is None  # no timer-based resend by default
    opted = make_settings(resend_unknown_after_minutes=90, reconcile_after_minutes=60)
    found = opted.warnings()
    assert any("POSVENTA_RESEND_UNKNOWN_AFTER_MINUTES is set" in w and "twice" in w for w in found)
    assert any("POSVENTA_RECONCILE_AFTER_MINUTES is no longer used" in w for w in found)
