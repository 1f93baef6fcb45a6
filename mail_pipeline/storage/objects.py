"""Where the lake's files live: a local folder, or a prefix in an S3 bucket (`s3://bucket/prefix`).

Every place that writes, reads, lists or deletes a lake file (day files, state files, flag
cursors, the sync log, quarantine) takes a *location*: a `pathlib.Path` for a local folder, a
`UPath` (universal_pathlib over fsspec's s3fs) for S3. Both answer the same path questions
(`/`, `parent`, `glob`, `exists`, `read_bytes`); what differs is here, in one place:

- a write is all-or-nothing either way: locally a temporary file renamed into place (the lake's
  own `claim_temp`), on S3 the whole object in one PUT, which S3 makes visible only complete;
- pyarrow reads a remote file through the same fsspec filesystem, wrapped (`source`).

Credentials and the endpoint come only from the standard AWS variables (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL): never copied into settings, run config or
logs.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from typing_extensions import TypeIs

if TYPE_CHECKING:  # pyarrow and s3fs load where used: settings import this module
    import pyarrow as pa
    import pyarrow.fs as pafs
    from upath import UPath

    Location: TypeAlias = Path | UPath
else:
    Location = Any

T = TypeVar("T")
SCHEME = "s3://"


class StorageUrlError(ValueError):
    """MAIL_PIPELINE_STORAGE_URL names no storage this pipeline can use."""


def is_remote_url(url: str) -> bool:
    return "://" in url


def s3_options() -> dict[str, Any]:
    """s3fs's options from the standard AWS variables (botocore reads the keys itself; the
    endpoint and region are passed on for S3-compatible stores: MinIO, SeaweedFS, Ceph, R2)."""
    client: dict[str, str] = {}
    if endpoint := os.environ.get("AWS_ENDPOINT_URL"):
        client["endpoint_url"] = endpoint
    if region := os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"):
        client["region_name"] = region
    # No listing cache: another process (a worker, the sensor) writes the same prefix.
    return {"client_kwargs": client, "use_listings_cache": False}


def lancedb_options() -> dict[str, str]:
    """LanceDB's `storage_options` for an s3:// URI, from the same variables (its object store
    reads AWS_* itself too; the endpoint of a plain-http store needs allow_http)."""
    options: dict[str, str] = {}
    if endpoint := os.environ.get("AWS_ENDPOINT_URL"):
        options["aws_endpoint"] = endpoint
        options["allow_http"] = str(endpoint.startswith("http://")).lower()
    if region := os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"):
        options["aws_region"] = region
    return options


def check_url(url: str) -> str:
    """`url` when it is a local folder or s3://bucket[/prefix]; else StorageUrlError saying so."""
    if is_remote_url(url) and (not url.startswith(SCHEME) or not url[len(SCHEME) :].strip("/")):
        raise StorageUrlError(
            f"MAIL_PIPELINE_STORAGE_URL={url!r} is neither a local folder nor s3://bucket/prefix"
        )
    return url


def location(url: str) -> Location:
    """The location a storage URL names: a local path as is, `s3://bucket/prefix` as a UPath."""
    if not is_remote_url(check_url(url)):
        return Path(url)
    from upath import UPath  # s3fs and its botocore load only when storage is remote

    remote: UPath = UPath(url.rstrip("/"), **s3_options())
    return remote


def storage_root(storage_url: str, data_dir: str | Path) -> Location:
    """Where the lake and the vectors live: `storage_url` when set, else the data directory."""
    return location(storage_url.rstrip("/") or str(data_dir))


def is_remote(path: Location) -> TypeIs[UPath]:
    return not isinstance(path, Path)


def source(path: Location) -> tuple[str, pafs.FileSystem | None]:
    """What pyarrow opens `path` by: the path itself locally, or the key and a filesystem
    wrapping fsspec's (ranged reads: a footer costs one small GET, not the whole object)."""
    if not is_remote(path):
        return str(path), None
    import pyarrow.fs as pafs

    return path.path, pafs.PyFileSystem(pafs.FSSpecHandler(path.fs))


def put_whole(path: UPath, produce: Callable[[pa.BufferOutputStream], T]) -> tuple[T, int]:
    """Remote only: `produce` writes the object into memory, which is then stored in one PUT (no
    reader ever sees part of it; a failure before the PUT leaves the old object). Returns what
    `produce` returned and the object's size."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    result = produce(sink)
    data = sink.getvalue().to_pybytes()
    path.fs.pipe_file(path.path, data)
    return result, len(data)


def write_bytes(path: Location, content: bytes) -> None:
    """Store `content` at `path` whole: a private temp file renamed locally, one PUT on S3."""
    if is_remote(path):
        path.fs.pipe_file(path.path, content)
        return
    from mail_pipeline.storage.permissions import write_private

    write_private(path, content)


def size(path: Location) -> int:
    return int(path.fs.size(path.path)) if is_remote(path) else path.stat().st_size


def remove_tree(path: Location) -> int:
    """Delete the folder (prefix) `path` and everything under it; return the bytes freed."""
    if is_remote(path):
        fs, key = path.fs, path.path
        found = fs.find(key, detail=True)
        if not found:
            return 0
        fs.rm(list(found), recursive=False)
        return sum(int(info.get("size") or 0) for info in found.values())
    if not path.is_dir():
        return 0
    freed = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    shutil.rmtree(path)
    return freed


def move(src: Location, dst: Location) -> None:
    """Move one file: a rename locally (same file system), copy then delete on S3."""
    if is_remote(src) and is_remote(dst):
        src.fs.mv(src.path, dst.path)
    elif not is_remote(src) and not is_remote(dst):
        os.replace(src, dst)
    else:
        raise ValueError(f"cannot move {src} to {dst}: one is local, the other remote")
