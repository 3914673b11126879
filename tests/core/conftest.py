"""Fixtures for the journey-language core: a templates folder the inline journeys can use."""

from __future__ import annotations

from pathlib import Path

import pytest
from core_helpers import write_templates

#: Templates present in both locales.
NAMES = ("hello", "thank_you", "promo", "tip", "reminder")


@pytest.fixture(scope="session")
def templates_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """es + en versions of NAMES, an es-only template, one that does not parse, one without html."""
    root = tmp_path_factory.mktemp("templates")
    write_templates(root, NAMES)
    write_templates(root, ["only_es"], locales=["es"])
    write_templates(root, ["broken"], body="{% block subject %}{{ customer.name {% endblock %}\n")
    write_templates(
        root, ["no_html"], body="{% block subject %}S{% endblock %}{% block text %}T{% endblock %}\n"
    )
    return root
