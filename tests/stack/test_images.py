"""One list of pinned images (backends/images.yaml), and everything that repeats a pin agrees with it.

Also: every healthcheck calls only programs its image ships. Docker cannot run here, so what each
image contains is recorded in the list (from the images' own build files) and held against the
compose file; a `wget` healthcheck in a distroless image fails this test instead of failing forever
in `docker compose up --wait`.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

import pytest
import yaml

from mnemo_otel.grafana import GRAFANA_VERSION
from testkit import REPO_ROOT

IMAGES_FILE = REPO_ROOT / "backends" / "images.yaml"
COMPOSE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
MANIFEST = REPO_ROOT / "collector" / "manifest.yaml"
BUILD_SH = REPO_ROOT / "collector" / "build.sh"


@pytest.fixture(scope="module")
def images() -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = yaml.safe_load(IMAGES_FILE.read_text())["images"]
    return data


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = yaml.safe_load(COMPOSE.read_text())["services"]
    return data


def _tag(ref: str) -> str:
    return ref.rpartition(":")[2]


def test_every_compose_image_is_the_listed_pin(
    images: dict[str, dict[str, Any]], services: dict[str, dict[str, Any]]
) -> None:
    listed = {service: spec["ref"] for spec in images.values() for service in spec["services"]}
    for name, service in services.items():
        if "build" in service:
            continue  # built from the Dockerfile, whose base is checked below
        assert service["image"] == listed.get(name), f"{name}: {service['image']} is not the listed pin"
    assert set(listed) <= set(services), sorted(set(listed) - set(services))


def test_the_dockerfile_builds_on_the_listed_python(images: dict[str, dict[str, Any]]) -> None:
    bases = re.findall(r"^FROM (\S+)", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert bases and set(bases) == {images["python"]["ref"]}, bases


def test_grafana_provisioning_targets_the_listed_grafana(images: dict[str, dict[str, Any]]) -> None:
    assert _tag(images["grafana"]["ref"]) == GRAFANA_VERSION


def test_the_test_collector_is_the_release_of_the_compose_collector(
    images: dict[str, dict[str, Any]],
) -> None:
    version = _tag(images["collector"]["ref"])
    manifest = yaml.safe_load(MANIFEST.read_text())
    assert manifest["dist"]["version"] == version
    assert re.search(rf'^BUILDER_VERSION="v{re.escape(version)}"$', BUILD_SH.read_text(), flags=re.MULTILINE)
    modules = [
        entry["gomod"]
        for kind in ("receivers", "processors", "exporters", "extensions", "connectors")
        for entry in manifest.get(kind) or []
    ] + [manifest["telemetry"]["gomod"]]
    for module in modules:
        # Components are 0.x (beta) modules released with the collector; core's stable 1.x modules
        # (providers) follow their own numbering.
        assert module.endswith(f" v{version}"), module
    assert f"collector-contrib:{version}" in MANIFEST.read_text()


def _resolves(command: str, image: dict[str, Any]) -> bool:
    binaries = set(image["binaries"])
    if command.startswith("/"):
        return command in binaries
    return any(str(PurePosixPath(directory) / command) in binaries for directory in image["path"])


def _image_of(service: str, images: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return next(spec for spec in images.values() if service in spec["services"])


def test_every_healthcheck_calls_only_what_its_image_ships(
    images: dict[str, dict[str, Any]], services: dict[str, dict[str, Any]]
) -> None:
    checked = set()
    for name, service in services.items():
        test = service.get("healthcheck", {}).get("test")
        if not test:
            continue
        image = _image_of(name, images)
        kind, *argv = test
        if kind == "CMD-SHELL":
            assert _resolves("/bin/sh", image), f"{name}: CMD-SHELL in an image without a shell"
            argv = argv[0].split()
        else:
            assert kind == "CMD", f"{name}: unexpected healthcheck form {kind}"
        assert _resolves(argv[0], image), f"{name}: {argv[0]} is not in {image['ref']}"
        checked.add(name)
    assert {"postgres", "importer", "prometheus", "tempo", "loki", "grafana"} <= checked


def test_distroless_images_are_probed_by_their_own_binary(
    images: dict[str, dict[str, Any]], services: dict[str, dict[str, Any]]
) -> None:
    distroless = {name for name, spec in images.items() if spec["kind"] == "distroless"}
    assert distroless == {"tempo", "loki", "collector"}
    for name in distroless:
        assert images[name]["path"] == [] and len(images[name]["binaries"]) == 1, name
    assert services["tempo"]["healthcheck"]["test"] == ["CMD", "/tempo", "-health"]
    assert services["loki"]["healthcheck"]["test"] == ["CMD", "/usr/bin/loki", "-health"]
    # Its binary has no probe: no in-container healthcheck, readiness probed from the host.
    assert "healthcheck" not in services["collector"]
    assert "127.0.0.1:13133:13133" in services["collector"]["ports"]


def test_the_old_wget_checks_would_fail_this_table(images: dict[str, dict[str, Any]]) -> None:
    """The table is what makes the check bite: wget exists in Prometheus's image, not in Tempo's."""
    assert _resolves("wget", images["prometheus"])
    assert not _resolves("wget", images["tempo"])
    assert not _resolves("wget", images["loki"])
    assert _resolves("pg_isready", images["postgres"])
