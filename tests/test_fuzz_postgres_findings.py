"""What fuzzing the API on PostgreSQL found (tests/test_fuzz_api.py), pinned on both backends.

- Changing one's password locked the user row with ``FOR UPDATE`` across the outer join to its role, which
  PostgreSQL refuses (500); the lock now names the users table only.
- Ids were bounded to 2**63 - 1 while the id columns are INTEGER, 32 bits on PostgreSQL: a ``target_id`` of
  2**63 - 2 overflowed there (500). Ids are now bounded to 2**31 - 1 on both backends.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from grid_runtime.core.schemas import MAX_ID
from tests.factories import PASSWORD, Factory

API = "/api/v1"


class TestPasswordChangeOnEveryBackend:
    def test_the_new_password_works_and_other_sessions_end(self, any_db_client: TestClient,
                                                           any_db_factory: Factory) -> None:
        user = any_db_factory.user()
        login = {"email": user.email, "password": PASSWORD}
        other = any_db_client.post(f"{API}/auth/login", json=login)
        assert other.status_code == 200, other.text
        changed = any_db_client.put(f"{API}/users/me/password", headers=user.headers,
                                    json={"current_password": PASSWORD, "new_password": "new password 1"})
        assert changed.status_code == 204, changed.text
        assert any_db_client.get(f"{API}/tokens", headers={
            "Authorization": f"Bearer {other.json()['token']}"}).status_code == 401
        again = any_db_client.post(f"{API}/auth/login", json={**login, "password": "new password 1"})
        assert again.status_code == 200, again.text


class TestIdsWithinTheColumnsRange:
    def test_the_bound_is_postgresqls_integer(self) -> None:
        assert MAX_ID == 2**31 - 1

    def test_the_largest_id_is_not_found_and_one_past_it_is_refused(self, any_db_client: TestClient,
                                                                     any_db_factory: Factory) -> None:
        owner = any_db_factory.owner()
        largest = any_db_client.get(f"{API}/permissions", headers=owner.headers,
                                    params={"target_type": "dataset", "target_id": MAX_ID})
        assert largest.status_code == 200, largest.text
        assert largest.json()["items"] == []
        assert any_db_client.get(f"{API}/tensors/{MAX_ID}", headers=owner.headers).status_code == 404
        for number in (MAX_ID + 1, 2**63 - 2):
            past = any_db_client.get(f"{API}/permissions", headers=owner.headers,
                                     params={"target_type": "dataset", "target_id": number})
            assert past.status_code == 422, past.text
            assert past.json()["code"] == "invalid_input"


class TestNulCharactersAreRefusedAlike:
    """PostgreSQL's text refuses U+0000 (the fuzzer's ``GET /audit?actor=%00`` was a 500 there): a NUL in the URL or
    an escaped one in a JSON body is a 422 naming where, on every backend, before anything reads the database."""

    def test_a_nul_in_a_query_filter_is_refused_with_422(self, any_db_client: TestClient,
                                                         any_db_factory: Factory) -> None:
        response = any_db_client.get(f"{API}/audit?actor=%07%00x&target_id=y", headers=any_db_factory.owner().headers)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "invalid_input" and response.json()["details"] == {"field": "url"}

    def test_a_nul_in_a_path_is_refused_with_422(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        response = any_db_client.get(f"{API}/roles/ops%00eu", headers=any_db_factory.owner().headers)
        assert response.status_code == 422, response.text

    def test_an_escaped_nul_in_a_json_body_is_refused_and_nothing_is_written(
            self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        owner = any_db_factory.owner()
        response = any_db_client.post(f"{API}/groups", headers={**owner.headers, "Content-Type": "application/json"},
                                      content=b'{"name": "nul\\u0000group"}')
        assert response.status_code == 422, response.text
        assert response.json()["details"] == {"field": "body"}
        names = [g["name"] for g in any_db_client.get(f"{API}/groups", headers=owner.headers).json()["items"]]
        assert not any(name.startswith("nul") for name in names)

    def test_the_text_backslash_u0000_is_not_a_nul_and_is_kept(self, any_db_client: TestClient,
                                                             any_db_factory: Factory) -> None:
        owner = any_db_factory.owner()
        response = any_db_client.post(f"{API}/groups", headers={**owner.headers, "Content-Type": "application/json"},
                                      content=b'{"name": "literal", "description": "a \\\\u0000 b"}')
        assert response.status_code == 201, response.text
        assert response.json()["description"] == "a \\u0000 b"
