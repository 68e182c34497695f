"""Compute ``limits`` and ``os-keypairs`` against the real server, over raw HTTP and with real
clients (python-openstackclient, openstacksdk); and the routing regressions of issue 12: a
trailing slash or a path that is not ours is 404, on the compute and the volume faces."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openstack
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.support.identity_helpers import OPENSTACK, Account, make_account
from tests.support.keys import md5_fingerprint, ssh_public_key
from tests.support.openstack_clients import sdk_connection
from tests.support.server import StackvolProcess, wait_for
from tests.support.servers import IMAGE, mv, wait_gone

NOT_FOUND = {"itemNotFound": {"code": 404, "message": "The resource could not be found."}}


def project_id(client: httpx.Client) -> str:
    token = client.headers["X-Auth-Token"]
    resp = httpx.get(str(client.base_url).split("/v2.1")[0] + "/identity/v3/auth/tokens",
                     headers={"X-Auth-Token": token, "X-Subject-Token": token}, timeout=30)
    return resp.json()["token"]["project"]["id"]


@pytest.fixture(scope="module")
def member(server: StackvolProcess, keystone: httpx.Client) -> Account:
    """A member of a project of its own (its limits and keypairs start empty)."""
    return make_account(server, keystone, "member")


def name(prefix: str = "kp") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# --- routing: trailing slashes and paths that are not ours (issue 12, defects 4 and 5) -------


@pytest.mark.parametrize("path", ["/os-volumes/", "/os-snapshots/", "/servers/", "/flavors/",
                                  "/images/", "/os-keypairs/", "/os-volumes_boot/",
                                  "/extensions/"])
@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT"])
def test_compute_trailing_slash_is_an_empty_id(demo: httpx.Client, method: str,
                                               path: str) -> None:
    resp = demo.request(method, path, headers=mv("2.1"))
    assert (resp.status_code, resp.json()) == (404, NOT_FOUND)
    with_project = demo.request(method, f"/{project_id(demo)}{path}", headers=mv("2.1"))
    assert (with_project.status_code, with_project.json()) == (404, NOT_FOUND)


def test_compute_collections_without_slash_still_answer(demo: httpx.Client) -> None:
    for path in ("/os-volumes", "/os-snapshots", "/servers", "/flavors", "/os-keypairs",
                 "/limits", f"/{project_id(demo)}/os-volumes"):
        assert demo.get(path, headers=mv("2.1")).status_code == 200, path
    assert demo.get("/").status_code == 200  # "/v2.1/": the version document


@pytest.mark.parametrize("path", ["/os-hypervisors", "/os-hypervisors/detail", "/nonexistent",
                                  "/nonexistent/deeper/still", "/os-availability-zone-x"])
def test_unknown_compute_paths_are_404(demo: httpx.Client, path: str) -> None:
    resp = demo.get(path)
    assert (resp.status_code, resp.json()) == (404, NOT_FOUND)


def test_unknown_path_below_the_project_is_404(demo: httpx.Client) -> None:
    resp = demo.get(f"/{project_id(demo)}/nonexistent")
    assert (resp.status_code, resp.json()) == (404, NOT_FOUND)


def test_another_projects_id_before_a_collection_stays_400(demo: httpx.Client) -> None:
    other = uuid.uuid4().hex
    for path in (f"/{other}/servers", f"/{other}/limits", f"/{other}/os-keypairs/x"):
        resp = demo.get(path)
        assert resp.status_code == 400, path
        assert resp.json()["badRequest"]["message"] == (
            f"Malformed request URL: URL's project_id '{other}' doesn't match Context's "
            f"project_id '{project_id(demo)}'")


@pytest.mark.parametrize("collection", ["volumes", "snapshots", "types", "attachments"])
@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT"])
def test_volume_trailing_slash_is_an_empty_id(server: StackvolProcess, demo: httpx.Client,
                                              method: str, collection: str) -> None:
    headers = {"X-Auth-Token": demo.headers["X-Auth-Token"],
               "OpenStack-API-Version": "volume 3.27"}
    for prefix in (f"/volume/v3/{project_id(demo)}", "/volume/v3"):
        resp = httpx.request(method, f"{server.url}{prefix}/{collection}/", headers=headers,
                             timeout=30)
        assert (resp.status_code, resp.json()) == (404, NOT_FOUND), (prefix, collection)
        listed = httpx.get(f"{server.url}{prefix}/{collection}", headers=headers, timeout=30)
        assert listed.status_code == 200, listed.text


def test_volume_paths_that_are_not_ours(server: StackvolProcess, demo: httpx.Client) -> None:
    headers = {"X-Auth-Token": demo.headers["X-Auth-Token"]}
    project = project_id(demo)
    for path in ("/volume/v3/nonexistent/deeper", f"/volume/v3/{project}/nonexistent"):
        resp = httpx.get(server.url + path, headers=headers, timeout=30)
        assert (resp.status_code, resp.json()) == (404, NOT_FOUND), path
    other = httpx.get(f"{server.url}/volume/v3/{uuid.uuid4().hex}/volumes", headers=headers,
                      timeout=30)
    assert other.status_code == 400 and "Malformed request url" in other.text


# --- limits ----------------------------------------------------------------------------------

LIMITS_21 = {"maxTotalRAMSize", "maxTotalInstances", "maxTotalCores", "maxTotalKeypairs",
             "maxTotalFloatingIps", "maxServerMeta", "maxImageMeta", "maxPersonality",
             "maxPersonalitySize", "maxSecurityGroups", "maxSecurityGroupRules",
             "maxServerGroups", "maxServerGroupMembers", "totalRAMUsed", "totalCoresUsed",
             "totalInstancesUsed", "totalFloatingIpsUsed", "totalSecurityGroupsUsed",
             "totalServerGroupsUsed"}
NETWORK_LIMITS = {"maxTotalFloatingIps", "maxSecurityGroups", "maxSecurityGroupRules",
                  "totalFloatingIpsUsed", "totalSecurityGroupsUsed"}


@pytest.mark.parametrize(("version", "fields"), [
    ("2.1", LIMITS_21),
    ("2.35", LIMITS_21),
    ("2.36", LIMITS_21 - NETWORK_LIMITS),
    ("2.39", LIMITS_21 - NETWORK_LIMITS - {"maxImageMeta"}),
    ("2.57", LIMITS_21 - NETWORK_LIMITS - {"maxImageMeta", "maxPersonality",
                                           "maxPersonalitySize"}),
    ("2.latest", LIMITS_21 - NETWORK_LIMITS - {"maxImageMeta", "maxPersonality",
                                               "maxPersonalitySize"}),
])
def test_limits_fields_by_microversion(demo: httpx.Client, version: str,
                                       fields: set[str]) -> None:
    version = "latest" if version == "2.latest" else version
    resp = demo.get("/limits", headers=mv(version))
    assert resp.status_code == 200, resp.text
    body = resp.json()["limits"]
    assert body["rate"] == []
    assert set(body["absolute"]) == fields
    assert all(isinstance(value, int) for value in body["absolute"].values())


def test_limits_show_the_quotas_and_the_usage(admin: httpx.Client, member: Account) -> None:
    quota = {"instances": 7, "cores": 9, "ram": 8192, "key_pairs": 30, "metadata_items": 64}
    resp = admin.put(f"/os-quota-sets/{member.project_id}", json={"quota_set": quota})
    assert resp.status_code == 200, resp.text
    with member.compute("2.1") as client:
        made = client.post("/servers", json={"server": {
            "name": "counted", "imageRef": IMAGE, "flavorRef": "2"}})  # 1 vCPU, 2048 MB
        assert made.status_code == 202, made.text
        limits = client.get("/limits").json()["limits"]["absolute"]
        assert (limits["maxTotalInstances"], limits["maxTotalCores"],
                limits["maxTotalRAMSize"], limits["maxTotalKeypairs"]) == (7, 9, 8192, 30)
        assert limits["maxServerMeta"] == limits["maxImageMeta"] == 64
        assert (limits["totalInstancesUsed"], limits["totalCoresUsed"],
                limits["totalRAMUsed"]) == (1, 1, 2048)
        assert client.delete(f"/servers/{made.json()['server']['id']}").status_code == 204
        wait_gone(client, made.json()["server"]["id"])
        after = client.get("/limits").json()["limits"]["absolute"]
        assert after["totalInstancesUsed"] == 0


def test_limits_of_another_project_are_for_admins(admin: httpx.Client, demo: httpx.Client,
                                                 member: Account) -> None:
    admin.put(f"/os-quota-sets/{member.project_id}", json={"quota_set": {"cores": 11}})
    resp = admin.get("/limits", params={"tenant_id": member.project_id})
    assert resp.status_code == 200, resp.text
    assert resp.json()["limits"]["absolute"]["maxTotalCores"] == 11
    refused = demo.get("/limits", params={"tenant_id": member.project_id})
    assert refused.status_code == 403, refused.text
    own = demo.get("/limits", params={"tenant_id": project_id(demo)})
    assert own.status_code == 200


def test_limits_refuse_unknown_query_from_275(demo: httpx.Client) -> None:
    assert demo.get("/limits", params={"foo": "1"}, headers=mv("2.74")).status_code == 200
    assert demo.get("/limits", params={"foo": "1"}, headers=mv("2.75")).status_code == 400


# --- keypairs: raw HTTP ------------------------------------------------------------------------


def test_generated_keypair_works_and_is_shown_as_nova(demo: httpx.Client) -> None:
    key_name = name()
    resp = demo.post("/os-keypairs", json={"keypair": {"name": key_name}}, headers=mv("2.2"))
    assert resp.status_code == 201, resp.text
    made = resp.json()["keypair"]
    assert set(made) == {"name", "public_key", "fingerprint", "user_id", "type", "private_key"}
    assert made["type"] == "ssh" and made["public_key"].endswith(" Generated-by-Nova")
    private = serialization.load_pem_private_key(made["private_key"].encode(), None)
    derived = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                serialization.PublicFormat.OpenSSH).decode()
    assert made["public_key"].split()[:2] == derived.split()
    assert made["fingerprint"] == md5_fingerprint(derived)

    shown = demo.get(f"/os-keypairs/{key_name}", headers=mv("2.2")).json()["keypair"]
    assert set(shown) == {"name", "public_key", "fingerprint", "user_id", "type", "id",
                          "created_at", "updated_at", "deleted", "deleted_at"}
    assert (shown["deleted"], shown["deleted_at"], shown["updated_at"]) == (False, None, None)
    assert isinstance(shown["id"], int) and "private_key" not in shown
    listed = demo.get("/os-keypairs", headers=mv("2.2")).json()["keypairs"]
    entry = next(k["keypair"] for k in listed if k["keypair"]["name"] == key_name)
    assert entry == {"name": key_name, "public_key": made["public_key"],
                     "fingerprint": made["fingerprint"], "type": "ssh"}
    assert demo.delete(f"/os-keypairs/{key_name}", headers=mv("2.2")).status_code == 204
    gone = demo.get(f"/os-keypairs/{key_name}")
    assert gone.status_code == 404 and key_name in gone.json()["itemNotFound"]["message"]
    assert demo.delete(f"/os-keypairs/{key_name}").status_code == 404


def test_keypairs_at_21_have_no_type_and_old_codes(demo: httpx.Client) -> None:
    key_name = name()
    resp = demo.post("/os-keypairs", json={"keypair": {"name": key_name}}, headers=mv("2.1"))
    assert resp.status_code == 200
    assert "type" not in resp.json()["keypair"]
    assert "type" not in demo.get(f"/os-keypairs/{key_name}").json()["keypair"]
    typed = demo.post("/os-keypairs", json={"keypair": {"name": name(), "type": "ssh"}},
                      headers=mv("2.1"))
    assert typed.status_code == 400  # ``type`` is 2.2's
    assert demo.delete(f"/os-keypairs/{key_name}", headers=mv("2.1")).status_code == 202


def test_import_keeps_the_key_and_computes_its_fingerprint(demo: httpx.Client) -> None:
    public, fingerprint = ssh_public_key()
    key_name = name()
    resp = demo.post("/os-keypairs", json={"keypair": {"name": key_name, "public_key": public}},
                     headers=mv("2.2"))
    assert resp.status_code == 201, resp.text
    made = resp.json()["keypair"]
    assert (made["public_key"], made["fingerprint"]) == (public, fingerprint)
    assert "private_key" not in made
    ed = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    assert demo.post("/os-keypairs", json={"keypair": {"name": name(), "public_key": ed}},
                     headers=mv("2.2")).status_code == 201
    demo.delete(f"/os-keypairs/{key_name}")


@pytest.mark.parametrize("public_key", ["ssh-rsa JUNK nova@ubuntu", "", "ssh-rsa " + "A" * 2000,
                                        "not a key at all", "ssh-dss"])
def test_garbage_public_keys_are_400(demo: httpx.Client, public_key: str) -> None:
    resp = demo.post("/os-keypairs", json={"keypair": {"name": name(), "public_key": public_key}})
    assert resp.status_code == 400, resp.text
    assert resp.json()["badRequest"]["message"] == (
        "Keypair data is invalid: failed to generate fingerprint")


@pytest.mark.parametrize(("version", "key_name"), [
    ("2.1", ""), ("2.1", "k" * 256), ("2.1", "key_/.\\@:"), ("2.1", " lead"), ("2.1", "trail "),
    ("2.1", "dot.ted"), ("2.91", "at@host"), ("2.92", "slash/"), ("2.92", "k" * 256),
])
def test_bad_keypair_names_are_400(demo: httpx.Client, version: str, key_name: str) -> None:
    public, _ = ssh_public_key()
    resp = demo.post("/os-keypairs", json={"keypair": {"name": key_name, "public_key": public}},
                     headers=mv(version))
    assert resp.status_code == 400, resp.text


def test_names_with_spaces_and_292_characters(demo: httpx.Client) -> None:
    public, _ = ssh_public_key()
    for version, key_name in (("2.1", f"my key {uuid.uuid4().hex[:6]}"),
                              ("2.92", f"me.{uuid.uuid4().hex[:6]}@laptop")):
        resp = demo.post("/os-keypairs", json={"keypair": {"name": key_name,
                                                           "public_key": public}},
                         headers=mv(version))
        assert resp.status_code in (200, 201), resp.text
        assert demo.get(f"/os-keypairs/{key_name}").json()["keypair"]["name"] == key_name
        assert demo.delete(f"/os-keypairs/{key_name}").status_code == 202


def test_duplicate_name_is_409(demo: httpx.Client) -> None:
    key_name = name()
    assert demo.post("/os-keypairs", json={"keypair": {"name": key_name}}).status_code == 200
    again = demo.post("/os-keypairs", json={"keypair": {"name": key_name}})
    assert again.status_code == 409
    assert again.json()["conflictingRequest"]["message"] == (
        f"Key pair '{key_name}' already exists.")
    demo.delete(f"/os-keypairs/{key_name}")


def test_concurrent_creates_of_one_name_make_one_keypair(demo: httpx.Client) -> None:
    public, _ = ssh_public_key()
    key_name = name("race")
    body = {"keypair": {"name": key_name, "public_key": public}}
    with ThreadPoolExecutor(6) as pool:
        codes = sorted(pool.map(lambda _: demo.post("/os-keypairs", json=body).status_code,
                                range(6)))
    assert codes == [200] + [409] * 5
    assert demo.delete(f"/os-keypairs/{key_name}").status_code == 202


def test_292_only_imports(demo: httpx.Client) -> None:
    resp = demo.post("/os-keypairs", json={"keypair": {"name": name()}}, headers=mv("2.92"))
    assert resp.status_code == 400 and "public_key" in resp.text
    public, _ = ssh_public_key()
    made = demo.post("/os-keypairs", json={"keypair": {"name": name(), "public_key": public}},
                     headers=mv("2.92"))
    assert made.status_code == 201 and "private_key" not in made.json()["keypair"]


def test_x509_keypairs(demo: httpx.Client) -> None:
    key_name = name()
    resp = demo.post("/os-keypairs", json={"keypair": {"name": key_name, "type": "x509"}},
                     headers=mv("2.2"))
    assert resp.status_code == 201, resp.text
    made = resp.json()["keypair"]
    cert = x509.load_pem_x509_certificate(made["public_key"].encode())
    assert made["fingerprint"] == ":".join(
        f"{b:02x}" for b in cert.fingerprint(hashes.SHA1()))
    assert cert.subject.rfc4514_string() == f"CN={made['user_id']}"
    serialization.load_pem_private_key(made["private_key"].encode(), None)
    imported = demo.post("/os-keypairs", json={"keypair": {
        "name": name(), "type": "x509", "public_key": made["public_key"]}}, headers=mv("2.2"))
    assert imported.status_code == 201
    assert imported.json()["keypair"]["fingerprint"] == made["fingerprint"]
    assert demo.get(f"/os-keypairs/{key_name}", headers=mv("2.2")).json()[
        "keypair"]["type"] == "x509"
    public, _ = ssh_public_key()
    wrong = demo.post("/os-keypairs", json={"keypair": {"name": name(), "type": "x509",
                                                        "public_key": public}},
                      headers=mv("2.2"))
    assert wrong.status_code == 400
    bad_type = demo.post("/os-keypairs", json={"keypair": {"name": name(), "type": "pgp"}},
                         headers=mv("2.2"))
    assert bad_type.status_code == 400


def test_keypairs_belong_to_their_user(server: StackvolProcess, keystone: httpx.Client,
                                       demo: httpx.Client, admin: httpx.Client) -> None:
    """Another user of the same project sees none of demo's; an admin names users from 2.10."""
    key_name = name()
    made = demo.post("/os-keypairs", json={"keypair": {"name": key_name}}, headers=mv("2.10"))
    demo_user = made.json()["keypair"]["user_id"]
    project = {"id": project_id(demo), "name": "demo"}
    peer = make_account(server, keystone, "member", project)
    with peer.compute("2.10") as client:
        assert key_name not in [k["keypair"]["name"] for k in
                                client.get("/os-keypairs").json()["keypairs"]]
        assert client.get(f"/os-keypairs/{key_name}").status_code == 404
        for method, path in (("GET", "/os-keypairs"), ("GET", f"/os-keypairs/{key_name}"),
                             ("DELETE", f"/os-keypairs/{key_name}")):
            resp = client.request(method, path, params={"user_id": demo_user})
            assert resp.status_code == 403, (method, path, resp.text)
        same_name = client.post("/os-keypairs", json={"keypair": {"name": key_name}})
        assert same_name.status_code == 201  # names are per user
        for_demo = client.post("/os-keypairs", json={"keypair": {
            "name": name(), "user_id": demo_user}})
        assert for_demo.status_code == 403
    as_admin = {"user_id": demo_user}
    assert admin.get(f"/os-keypairs/{key_name}", params=as_admin,
                     headers=mv("2.10")).json()["keypair"]["user_id"] == demo_user
    assert key_name in [k["keypair"]["name"] for k in admin.get(
        "/os-keypairs", params=as_admin, headers=mv("2.10")).json()["keypairs"]]
    # Before 2.10 the parameter means nothing: the admin's own keypairs.
    assert admin.get(f"/os-keypairs/{key_name}", params=as_admin,
                     headers=mv("2.9")).status_code == 404
    given = admin.post("/os-keypairs", json={"keypair": {"name": name(), "user_id": demo_user}},
                       headers=mv("2.10"))
    assert given.status_code == 201 and given.json()["keypair"]["user_id"] == demo_user
    assert admin.delete(f"/os-keypairs/{key_name}", params=as_admin,
                        headers=mv("2.10")).status_code == 204
    assert demo.get(f"/os-keypairs/{key_name}").status_code == 404


def test_keypair_list_pages_by_name_from_235(member: Account) -> None:
    public, _ = ssh_public_key()
    with member.compute("2.35") as client:
        names = sorted(f"page-{i}" for i in range(5))
        for key_name in reversed(names):
            assert client.post("/os-keypairs", json={"keypair": {
                "name": key_name, "public_key": public}}).status_code == 201
        first = client.get("/os-keypairs", params={"limit": 2}).json()
        assert [k["keypair"]["name"] for k in first["keypairs"]] == names[:2]
        (link,) = first["keypairs_links"]
        assert link["rel"] == "next" and "marker=page-1" in link["href"]
        assert "/os-keypairs?" in link["href"]
        rest = client.get("/os-keypairs", params={"marker": names[1]}).json()
        assert [k["keypair"]["name"] for k in rest["keypairs"]] == names[2:]
        assert "keypairs_links" not in rest
        bad = client.get("/os-keypairs", params={"marker": "nope"})
        assert bad.status_code == 400 and "Marker nope could not be found." in bad.text
        # Before 2.35 there is no paging: limit is ignored, the whole list comes back.
        whole = client.get("/os-keypairs", params={"limit": 2}, headers=mv("2.34")).json()
        assert [k["keypair"]["name"] for k in whole["keypairs"]] == names
        assert client.get("/os-keypairs", params={"foo": 1},
                          headers=mv("2.75")).status_code == 400
        for key_name in names:
            client.delete(f"/os-keypairs/{key_name}")


def test_keypair_quota_is_403(admin: httpx.Client, member: Account) -> None:
    admin.put(f"/os-quota-sets/{member.project_id}", json={"quota_set": {"key_pairs": 1}})
    public, _ = ssh_public_key()
    with member.compute("2.2") as client:
        first = client.post("/os-keypairs", json={"keypair": {"name": "only",
                                                              "public_key": public}})
        assert first.status_code == 201, first.text
        over = client.post("/os-keypairs", json={"keypair": {"name": "second",
                                                             "public_key": public}})
        assert over.status_code == 403
        assert over.json()["forbidden"]["message"] == "Quota exceeded, too many key pairs."
        client.delete("/os-keypairs/only")
    admin.put(f"/os-quota-sets/{member.project_id}", json={"quota_set": {"key_pairs": 100}})


def test_server_key_name_is_checked_and_shown(demo: httpx.Client) -> None:
    unknown = demo.post("/servers", json={"server": {
        "name": "nokey", "imageRef": IMAGE, "flavorRef": "1", "key_name": "no-such-key"}})
    assert unknown.status_code == 400
    assert unknown.json()["badRequest"]["message"] == "Invalid key_name provided."
    key_name = name()
    demo.post("/os-keypairs", json={"keypair": {"name": key_name}})
    made = demo.post("/servers", json={"server": {
        "name": "withkey", "imageRef": IMAGE, "flavorRef": "1", "key_name": key_name}})
    assert made.status_code == 202, made.text
    server_id = made.json()["server"]["id"]
    assert demo.get(f"/servers/{server_id}").json()["server"]["key_name"] == key_name
    detail = demo.get("/servers/detail").json()["servers"]
    assert next(s for s in detail if s["id"] == server_id)["key_name"] == key_name
    without = demo.post("/servers", json={"server": {
        "name": "nokey", "imageRef": IMAGE, "flavorRef": "1"}}).json()["server"]["id"]
    assert demo.get(f"/servers/{without}").json()["server"]["key_name"] is None
    for sid in (server_id, without):
        demo.delete(f"/servers/{sid}")
        wait_gone(demo, sid)
    demo.delete(f"/os-keypairs/{key_name}")


# --- real clients ------------------------------------------------------------------------------


def osc(server: StackvolProcess, *args: str, user: str = "demo") -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["OS_CLIENT_CONFIG_FILE"] = str(server.clouds_yaml)
    done = subprocess.run([OPENSTACK, "--os-cloud", f"stackvol-{user}", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"openstack {' '.join(args)}:\n{done.stderr}"
    out = done.stdout.strip()
    return json.loads(out) if out[:1] in ("{", "[") else out


def test_openstackclient_keypairs_and_limits(server: StackvolProcess) -> None:
    generated, imported = name("osc"), name("osc-imp")
    private = osc(server, "keypair", "create", generated)
    assert "PRIVATE KEY-----" in private
    public, fingerprint = ssh_public_key()
    key_file = server.data_dir.parent / f"{imported}.pub"
    key_file.write_text(public + "\n")
    made = osc(server, "keypair", "create", "--public-key", str(key_file), imported,
               "-f", "json")
    assert (made["name"], made["fingerprint"]) == (imported, fingerprint)
    listed = {k["Name"]: k for k in osc(server, "keypair", "list", "-f", "json")}
    assert {generated, imported} <= set(listed)
    shown = osc(server, "keypair", "show", imported, "-f", "json")
    assert shown["fingerprint"] == fingerprint and shown["type"] == "ssh"
    assert osc(server, "keypair", "show", "--public-key", imported) == public
    osc(server, "keypair", "delete", generated, imported)
    left = [k["Name"] for k in osc(server, "keypair", "list", "-f", "json")]
    assert generated not in left and imported not in left

    # Today's client names the fields as openstacksdk does (and adds the volume limits).
    limits = {row["Name"]: row["Value"] for row in osc(server, "limits", "show", "--absolute",
                                                        "-f", "json")}
    assert (limits["max_total_keypairs"], limits["max_server_meta"]) == (100, 128)
    for field in ("max_total_instances", "max_total_cores", "max_total_ram_size",
                  "total_instances_used", "total_cores_used", "total_ram_used",
                  "max_total_volumes"):
        assert field in limits, field
    other = {row["Name"]: row["Value"] for row in osc(
        server, "limits", "show", "--absolute", "--project", "demo", "-f", "json",
        user="admin")}
    assert other["max_total_keypairs"] == 100


@pytest.fixture
def sdk(server: StackvolProcess,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[openstack.connection.Connection]:
    with sdk_connection(server, monkeypatch, "demo") as conn:
        yield conn


def test_openstacksdk_keypairs_and_limits(sdk: openstack.connection.Connection) -> None:
    limits = sdk.compute.get_limits()
    assert limits.absolute.instances is not None
    assert limits.absolute.keypairs == 100
    assert limits.absolute.total_instances_used is not None
    cloud_limits = sdk.get_compute_limits()
    assert cloud_limits["max_total_keypairs"] == 100
    assert "total_cores_used" in cloud_limits

    public, fingerprint = ssh_public_key()
    key_name = name("sdk")
    made = sdk.compute.create_keypair(name=key_name, public_key=public)
    assert made.fingerprint == fingerprint
    assert sdk.compute.get_keypair(key_name).public_key == public
    assert key_name in [k.name for k in sdk.compute.keypairs()]
    cloud_made = sdk.create_keypair(name=key_name + "-c", public_key=public)
    assert cloud_made.name == key_name + "-c"
    assert sdk.search_keypairs(key_name + "-c")[0].name == key_name + "-c"
    sdk.compute.delete_keypair(key_name)
    assert sdk.delete_keypair(key_name + "-c") is True
    assert sdk.compute.find_keypair(key_name) is None
    with pytest.raises(openstack.exceptions.NotFoundException):
        sdk.compute.get_keypair(key_name)


def test_openstacksdk_server_with_key_name(sdk: openstack.connection.Connection) -> None:
    public, _ = ssh_public_key()
    key_name = name("sdk-srv")
    sdk.compute.create_keypair(name=key_name, public_key=public)
    made = sdk.compute.create_server(name="sdk-key", image_id=IMAGE, flavor_id="1",
                                      key_name=key_name, networks="none")
    found = wait_for(lambda: sdk.compute.get_server(made.id),
                     lambda s: s.status == "ACTIVE")
    assert found.key_name == key_name
    with pytest.raises(openstack.exceptions.BadRequestException,
                       match=r"Invalid key_name provided\."):
        sdk.compute.create_server(name="sdk-nokey", image_id=IMAGE, flavor_id="1",
                                   key_name="missing-key", networks="none")
    sdk.compute.delete_server(made.id)
    sdk.compute.wait_for_delete(made)
    sdk.compute.delete_keypair(key_name)
