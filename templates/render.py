"""Render the files a deployment puts on its machines: cloud-init, systemd units, config files.

Every provider renders through :func:`render`, so one set of rules holds everywhere: a variable the
template uses but the caller did not pass is an error (``StrictUndefined``), never an empty string on a
production machine, and a missing template names itself and where it was looked for.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES_DIR = Path(__file__).resolve().parent


class TemplateError(Exception):
    """A template is missing or was given the wrong context."""


@cache
def _environment() -> jinja2.Environment:
    # Shell, YAML and INI, never HTML: HTML escaping would corrupt them.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701
    )


def available() -> list[str]:
    """Every template's name, e.g. ``cloud-init/node.yaml.j2``."""
    return sorted(str(p.relative_to(TEMPLATES_DIR)) for p in TEMPLATES_DIR.rglob("*.j2"))


def render(name: str, **context: Any) -> str:
    """Render the template ``name`` (a path under ``templates/``) with ``context``."""
    try:
        template = _environment().get_template(name)
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(
            f"no template {exc.name!r} under {TEMPLATES_DIR}; known: {', '.join(available())}"
        ) from None
    try:
        return template.render(**context)
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"template {name!r}: {exc.message}") from None
