"""The Node serves the Admin at /admin: its files with the right types, a strict Content-Security-Policy that the
built bundle satisfies, long caching for hashed assets only, client routes sent to the app; and `gridctl admin
export` writes the same bundle for a static host, configured with the Node's URL."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

from fastapi.testclient import TestClient

from grid_runtime.admin import BUNDLE
from grid_runtime.admin.serving import CONTENT_SECURITY_POLICY, AdminApp
from tests.admin.conftest import require_bundle
from tests.clitools import Gridctl


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in = tag

    def handle_data(self, data: str) -> None:
        if self._in in ("script", "style") and data.strip():
            self.inline.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in = None


def index_tags(client: TestClient) -> Tags:
    parser = Tags()
    parser.feed(client.get("/admin/").text)
    return parser


class TestServedAtAdmin:
    def test_the_app_is_served_with_its_type_a_strict_policy_and_no_cache(self, client: TestClient) -> None:
        require_bundle()
        response = client.get("/admin/")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache"
        policy = response.headers["content-security-policy"]
        assert policy == CONTENT_SECURITY_POLICY
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
        assert directives["default-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert response.headers["x-content-type-options"] == "nosniff"

    def test_the_bundle_satisfies_the_policy_no_inline_script_or_style(self, client: TestClient) -> None:
        require_bundle()
        tags = index_tags(client)
        scripts = [attrs for tag, attrs in tags.tags if tag == "script"]
        assert scripts and all(a.get("src", "").startswith("./assets/") for a in scripts)
        assert tags.inline == []
        assert not any("style" in attrs or any(k.startswith("on") for k in attrs) for _, attrs in tags.tags)

    def test_hashed_assets_are_cached_for_a_year_with_their_types(self, client: TestClient) -> None:
        require_bundle()
        tags = index_tags(client)
        script = next(a["src"] for t, a in tags.tags if t == "script")
        style = next(a["href"] for t, a in tags.tags if t == "link" and a.get("rel") == "stylesheet")
        for path, kind in ((script, "text/javascript; charset=utf-8"), (style, "text/css; charset=utf-8")):
            assert path is not None and re.fullmatch(r"\./assets/[\w.-]+-[\w-]{8}\.(js|css)", path), path
            response = client.get(f"/admin/{path.removeprefix('./')}")
            assert response.status_code == 200
            assert response.headers["content-type"] == kind
            assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY

    def test_the_config_points_the_app_at_its_own_origin(self, client: TestClient) -> None:
        require_bundle()
        response = client.get("/admin/config.json")
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"node_url": ""}
        assert response.headers["cache-control"] == "no-cache"

    def test_client_routes_go_to_the_app_and_missing_files_are_404(self, client: TestClient) -> None:
        require_bundle()
        assert client.get("/admin", follow_redirects=False).headers["location"].endswith("/admin/")
        first = client.get("/admin/users", follow_redirects=False)
        assert (first.status_code, first.headers["location"]) == (302, "./#/users")
        deep = client.get("/admin/users/5", follow_redirects=False)
        assert (deep.status_code, deep.headers["location"]) == (302, "../#/users/5")
        missing = client.get("/admin/assets/nothing-12345678.js")
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
        assert client.get("/admin/%2e%2e/%2e%2e/etc/passwd").status_code == 404
        assert client.post("/admin/").status_code == 405
        assert client.get("/api/v1/health").json() == {"status": "ok"}  # the API stays where it is

    def test_a_node_without_a_built_admin_says_how_to_build_it(self, tmp_path: Path) -> None:
        from starlette.applications import Starlette
        from starlette.routing import Mount

        app = Starlette(routes=[Mount("/admin", AdminApp(tmp_path / "not-built"))])
        with TestClient(app) as client:
            response = client.get("/admin/")
        assert response.status_code == 503
        assert "pip install" in response.json()["message"]


class TestTheMachinesWheel:
    def test_the_wheel_cloud_machines_install_carries_the_built_admin_and_not_its_build_tools(
        self, tmp_path: Path
    ) -> None:
        import zipfile

        from providers.build import build_wheel

        require_bundle()
        _, wheel = build_wheel(tmp_path)
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
        assert "grid_runtime/admin/dist/index.html" in names
        assert any(n.startswith("grid_runtime/admin/dist/assets/") and n.endswith(".js") for n in names)
        assert [n for n in names if "node_modules" in n] == []


class TestExport:
    def test_export_writes_the_bundle_and_a_config_naming_the_node(self, tmp_path: Path) -> None:
        require_bundle()
        gridctl = Gridctl(home=tmp_path / "home")
        target = tmp_path / "site"
        result = gridctl("admin", "export", str(target), "--node-url", "https://node.example.com/api/v1/", "-o", "json")
        assert result.exit_code == 0, result.output
        assert json.loads((target / "config.json").read_text()) == {"node_url": "https://node.example.com"}
        shipped = sorted(p.relative_to(BUNDLE) for p in BUNDLE.rglob("*") if p.is_file())
        written = sorted(p.relative_to(target) for p in target.rglob("*") if p.is_file())
        assert written == sorted([*shipped, Path("config.json")])
        assert (target / "index.html").read_bytes() == (BUNDLE / "index.html").read_bytes()
        assert json.loads(result.stdout)["node_url"] == "https://node.example.com"

    def test_export_refuses_a_url_that_is_not_a_node(self, tmp_path: Path) -> None:
        result = Gridctl(home=tmp_path / "home")("admin", "export", str(tmp_path / "site"), "--node-url", "ftp://x")
        assert result.exit_code == 2
        assert not (tmp_path / "site").exists()
