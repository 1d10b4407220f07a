"""Pinned artifacts of the native stack, downloaded once into a cache and verified.

The cache (``~/.cache/cascade/stack`` unless ``CASCADE_STACK_CACHE`` says otherwise) is shared by every
CASCADE_HOME and every run: a second `cascade stack up` downloads nothing. Each file is checked
against its pinned SHA-256 before it is used; a partial or corrupt download is discarded.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import StackError

MAVEN = "https://repo.maven.apache.org/maven2"
NESSIE_VERSION = "0.99.0"
TRINO_VERSION = "476"
VERSITYGW_VERSION = "v1.7.0"
#: Trino plugins kept (postgresql needs geospatial; password-authenticators has the file
#: authenticator); the rest of the 896 MB tarball is deleted.
TRINO_PLUGINS = ("iceberg", "postgresql", "geospatial", "tpch", "password-authenticators")


@dataclass(frozen=True)
class Artifact:
    name: str
    url: str
    sha256: str
    size: int


NESSIE = Artifact(
    name=f"nessie-quarkus-{NESSIE_VERSION}-runner.jar",
    url=f"{MAVEN}/org/projectnessie/nessie/nessie-quarkus/{NESSIE_VERSION}/nessie-quarkus-{NESSIE_VERSION}-runner.jar",
    sha256="ce9fa33e2878bf5ea3981876b9e6204cabc0362b3dd82326b10e47271a78c417",
    size=245_069_033,
)
TRINO = Artifact(
    name=f"trino-server-{TRINO_VERSION}.tar.gz",
    url=f"{MAVEN}/io/trino/trino-server/{TRINO_VERSION}/trino-server-{TRINO_VERSION}.tar.gz",
    # Maven Central publishes only SHA-1 (c9b38be4017ebd2f7095455aaac772fb40247ebe) for this file;
    # the SHA-256 of that verified file is pinned here.
    sha256="cfd5accde17e8ebd251eeeb78aed1f490e77bb3a164d95a0f454bf8a7c1cbd3f",
    size=821_045_832,
)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(artifact: Artifact, cache: Path, *, quiet: bool = False) -> Path:
    """The verified artifact in the cache, downloading it (with a progress bar) when missing."""
    import httpx
    from tqdm import tqdm

    cache.mkdir(parents=True, exist_ok=True)
    target = cache / "downloads" / artifact.name
    if target.exists() and target.stat().st_size == artifact.size and _sha256(target) == artifact.sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    try:
        with (
            httpx.stream("GET", artifact.url, follow_redirects=True, timeout=60) as response,
            partial.open("wb") as out,
            tqdm(
                total=artifact.size,
                unit="B",
                unit_scale=True,
                desc=f"download {artifact.name}",
                disable=quiet,
                leave=False,
            ) as bar,
        ):
            response.raise_for_status()
            for chunk in response.iter_bytes(1 << 20):
                out.write(chunk)
                bar.update(len(chunk))
    except httpx.HTTPError as exc:
        partial.unlink(missing_ok=True)
        raise StackError(f"cannot download {artifact.url}: {exc}; check the network and retry") from None
    digest = _sha256(partial)
    if digest != artifact.sha256:
        partial.unlink(missing_ok=True)
        raise StackError(
            f"{artifact.name} failed its checksum (sha256 {digest}, expected {artifact.sha256}); it was discarded, retry"
        )
    partial.replace(target)
    return target


def nessie_jar(cache: Path, *, quiet: bool = False) -> Path:
    return fetch(NESSIE, cache, quiet=quiet)


def trino_home(cache: Path, *, quiet: bool = False) -> Path:
    """Trino unpacked into the cache with only the plugins the stack uses."""
    home = cache / f"trino-server-{TRINO_VERSION}"
    marker = f"{TRINO_VERSION} {' '.join(TRINO_PLUGINS)}"
    ready = home / ".cascade-ready"
    if ready.exists() and ready.read_text() == marker:
        return home  # unpacked with the plugins this version of Cascade keeps
    tarball = fetch(TRINO, cache, quiet=quiet)
    staging = cache / f".trino-unpack-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(staging, filter="tar")
    unpacked = staging / f"trino-server-{TRINO_VERSION}"
    for plugin in (unpacked / "plugin").iterdir():
        if plugin.name not in TRINO_PLUGINS:
            shutil.rmtree(plugin)
    (unpacked / ".cascade-ready").write_text(marker)
    shutil.rmtree(home, ignore_errors=True)
    unpacked.rename(home)
    shutil.rmtree(staging, ignore_errors=True)
    tarball.unlink(missing_ok=True)  # 821 MB; the unpacked, slimmed tree (530 MB) is what is reused
    return home


def versitygw(cache: Path, *, quiet: bool = False) -> Path:
    """The versitygw S3 gateway, built once from the Go module proxy (go.sum-verified) at a pinned tag."""
    binary = cache / "bin" / f"versitygw-{VERSITYGW_VERSION}"
    if binary.exists():
        return binary
    go = shutil.which("go") or next(
        (p for p in ("/usr/local/go/bin/go", "/usr/lib/go/bin/go") if Path(p).exists()), None
    )
    if go is None:
        raise StackError("building versitygw needs Go (>= 1.24): install it (e.g. .ci/system-deps.sh) and retry")
    build = cache / "build"
    build.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GOBIN": str(build),
        "GOFLAGS": "-mod=mod",
        "GOMODCACHE": str(cache / "gomod"),
        "GOCACHE": str(cache / "gocache"),
    }
    if not quiet:
        print(f"building versitygw {VERSITYGW_VERSION} with {go} (once; a few minutes)", flush=True)
    proc = subprocess.run(
        [go, "install", "-trimpath", f"github.com/versity/versitygw/cmd/versitygw@{VERSITYGW_VERSION}"],
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise StackError(f"building versitygw failed: {proc.stderr.strip().splitlines()[-1:]}")
    binary.parent.mkdir(parents=True, exist_ok=True)
    (build / "versitygw").replace(binary)
    shutil.rmtree(cache / "gocache", ignore_errors=True)  # build cache: hundreds of MB, not needed again
    return binary
