"""Saved contexts, like kubectl's: a name, a Node URL and a token, in one owner-only YAML file.

The file lives at ``$GRIDCTL_HOME/contexts.yaml`` (default ``~/.config/gridctl``). ``GRIDCTL_URL`` and
``GRIDCTL_TOKEN`` override the current context, for CI.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from gridctl.sdk.errors import NotConfigured


def home() -> Path:
    return Path(os.environ.get("GRIDCTL_HOME") or Path.home() / ".config" / "gridctl")


@dataclass
class Context:
    name: str
    url: str
    token: str
    email: str = ""
    deployment: str = ""  # provider name ("local", "aws", ...) when gridctl deployed it
    ca_file: str = ""  # the Node's own TLS root certificate, pinned (a cloud Node without --domain)


@dataclass
class ContextFile:
    current: str | None
    contexts: dict[str, Context]

    @classmethod
    def load(cls) -> ContextFile:
        path = home() / "contexts.yaml"
        if not path.exists():
            return cls(current=None, contexts={})
        raw = yaml.safe_load(path.read_text()) or {}
        contexts = {name: Context(name=name, **body) for name, body in (raw.get("contexts") or {}).items()}
        return cls(current=raw.get("current"), contexts=contexts)

    def save(self) -> None:
        """Write atomically with mode 0600: the file holds tokens."""
        directory = home()
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        body = {"current": self.current,
                "contexts": {n: {k: v for k, v in asdict(c).items() if k != "name"}
                             for n, c in self.contexts.items()}}
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".contexts.")
        try:
            with os.fdopen(fd, "w") as fh:
                yaml.safe_dump(body, fh, sort_keys=True)
            os.replace(tmp, directory / "contexts.yaml")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put(self, context: Context, *, make_current: bool = True) -> None:
        self.contexts[context.name] = context
        if make_current:
            self.current = context.name
        self.save()

    def remove(self, name: str) -> None:
        self.contexts.pop(name, None)
        if self.current == name:
            self.current = next(iter(self.contexts), None)
        self.save()


def resolve(name: str | None = None) -> Context:
    """The Node to use: GRIDCTL_URL/GRIDCTL_TOKEN, else the named or current context."""
    env_url, env_token = os.environ.get("GRIDCTL_URL"), os.environ.get("GRIDCTL_TOKEN")
    saved = ContextFile.load()
    context = saved.contexts.get(name or saved.current or "")
    if name and context is None:
        raise NotConfigured(f"no context named {name!r}; see 'gridctl context list'")
    # A context's token and pinned certificate go only to that context's own URL.
    same_node = context is not None and (not env_url or env_url == context.url)
    url = env_url or (context.url if context else None)
    token = env_token or (context.token if context and same_node else None)
    if not url:
        raise NotConfigured("no Node selected: run 'gridctl deploy local' or 'gridctl login URL', "
                            "or set GRIDCTL_URL and GRIDCTL_TOKEN")
    if not token:
        raise NotConfigured(f"not logged in to {url}: run 'gridctl login {url}' or set GRIDCTL_TOKEN")
    return Context(name=context.name if context and same_node else "", url=url, token=token,
                   ca_file=context.ca_file if context and same_node else "")
