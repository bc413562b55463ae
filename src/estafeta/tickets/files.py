"""Evidence files: stored once under their SHA-256, with a safe display name."""

from __future__ import annotations

import hashlib
import mimetypes
import re
import unicodedata
from pathlib import PurePath

from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import default_storage

from estafeta.accounts.models import User
from estafeta.core import clock
from estafeta.domain.errors import BadInput

from .models import StoredFile

# Evidence is documents and photos; anything else is refused rather than stored.
ALLOWED_TYPES = {
    "application/pdf", "image/jpeg", "image/png", "image/webp", "image/heic", "text/plain",
    "application/msword", "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
}


def safe_name(raw: str) -> str:
    """The last path part, without control or reserved characters, at most 200 characters."""
    name = PurePath((raw or "").replace("\\", "/")).name
    name = unicodedata.normalize("NFC", name)
    name = re.sub(r"[\x00-\x1f\x7f<>:\"/\\|?*]", "_", name).strip(" .")
    if not name:
        name = "file"
    stem, dot, ext = name.rpartition(".")
    if dot and len(ext) <= 10:
        return stem[: 200 - len(ext) - 1] + "." + ext
    return name[:200]


def store_file(upload: File, *, actor: User | None) -> StoredFile:
    """Store an uploaded file (streamed, never read whole into memory)."""
    limit = settings.ESTAFETA_MAX_EVIDENCE_BYTES
    name = safe_name(upload.name or "")
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if content_type not in ALLOWED_TYPES:
        raise BadInput(f"files of type {content_type} are not accepted as evidence",
                       code="file_type")
    digest, size = hashlib.sha256(), 0
    for chunk in upload.chunks():
        size += len(chunk)
        if size > limit:
            raise BadInput(f"the file is larger than {limit // (1 << 20)} MiB", code="file_size")
        digest.update(chunk)
    if size == 0:
        raise BadInput("the file is empty", code="file_empty")
    hexdigest = digest.hexdigest()
    path = f"evidence/{hexdigest[:2]}/{hexdigest}"
    if not default_storage.exists(path):
        upload.seek(0)
        default_storage.save(path, upload)
    return StoredFile.objects.create(sha256=hexdigest, size=size, name=name,
                                     content_type=content_type, path=path, uploaded_by=actor,
                                     uploaded_at=clock.now())
