"""The document store: files checked by content, kept encrypted, by their SHA-256 address, in
the state folder and in S3-compatible storage (a real local S3 server)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from fpdf import FPDF
from PIL import Image

from chronic.documents import (
    JPEG,
    PDF,
    PNG,
    DocumentMissing,
    DocumentRefused,
    DocumentStore,
    render_page,
)
from chronic.settings import Settings
from tests.fixtures.scans import ELF_EXECUTABLE, S3Server, pdf_scan, photo


def _store(tmp_path: Path, **settings: Any) -> DocumentStore:
    return DocumentStore.from_settings(Settings.model_validate({"state_dir": tmp_path, **settings}))


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


async def test_a_pdf_and_photos_are_kept_encrypted_by_their_digest(tmp_path: Path) -> None:
    store = _store(tmp_path)
    scan, jpeg, png = pdf_scan(3), photo("JPEG"), photo("PNG")
    kept = [await store.put(data) for data in (scan, jpeg, png)]
    assert [(d.media_type, d.pages) for d in kept] == [(PDF, 3), (JPEG, 1), (PNG, 1)]
    assert [d.sha256 for d in kept] == [hashlib.sha256(x).hexdigest() for x in (scan, jpeg, png)]

    files = _files(tmp_path / "documents")
    assert len(files) == 3
    for file, data in zip(sorted(files), sorted((scan, jpeg, png), key=_address), strict=True):
        on_disk = file.read_bytes()
        assert data not in on_disk and data[:64] not in on_disk  # not the plaintext
        assert b"%PDF" not in on_disk and b"JFIF" not in on_disk
    back, described = await store.get(kept[0].sha256)
    assert back == scan and described.pages == 3
    # The same file again is the same document: nothing new is written.
    await store.put(scan)
    assert len(_files(tmp_path / "documents")) == 3


def _address(data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    return f"{digest[:2]}/{digest}"


async def test_an_executable_renamed_pdf_a_damaged_file_and_an_oversized_one_are_refused(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path, document_max_bytes=200_000, document_max_pages=4)
    with pytest.raises(DocumentRefused, match="不是 PDF、JPG 或 PNG 格式"):
        await store.put(ELF_EXECUTABLE)
    with pytest.raises(DocumentRefused, match="PDF 文件已损坏"):
        await store.put(b"%PDF-1.7\n" + os.urandom(2000))
    with pytest.raises(DocumentRefused, match="图片文件已损坏"):
        await store.put(photo("PNG")[:300])
    with pytest.raises(DocumentRefused, match=r"文件太大，每份材料不能超过 0\.2 MB"):
        await store.put(b"%PDF-1.7\n" + bytes(200_001))
    with pytest.raises(DocumentRefused, match="PDF 共 5 页，每份材料最多 4 页"):
        await store.put(pdf_scan(5))
    assert _files(tmp_path / "documents") == []


async def test_a_blob_moved_to_another_address_or_read_with_another_key_is_not_shown(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    first, second = await store.put(pdf_scan(1)), await store.put(photo())
    folder = tmp_path / "documents"
    moved = folder / DocumentStore.path(first.sha256)
    moved.write_bytes((folder / DocumentStore.path(second.sha256)).read_bytes())
    with pytest.raises(DocumentMissing, match="failed authentication"):
        await store.get(first.sha256)
    other_key = {"k2": base64.b64encode(os.urandom(32)).decode()}
    stranger = _store(tmp_path, document_keys=other_key)
    with pytest.raises(DocumentMissing, match="not in CHRONIC_DOCUMENT_KEYS"):
        await stranger.get(second.sha256)
    with pytest.raises(DocumentMissing):
        await store.get("0" * 64)


async def test_keys_rotate_old_documents_stay_readable(tmp_path: Path) -> None:
    old = base64.b64encode(os.urandom(32)).decode()
    new = base64.b64encode(os.urandom(32)).decode()
    before = _store(tmp_path, document_keys={"2026-01": old})
    kept = await before.put(photo())
    after = _store(
        tmp_path,
        document_keys=json.loads(json.dumps({"2026-01": old, "2026-07": new})),
        document_current_key_id="2026-07",
    )
    data, _ = await after.get(kept.sha256)
    assert hashlib.sha256(data).hexdigest() == kept.sha256
    # A current key id that names no configured key is said at start, not at the first upload.
    with pytest.raises(ValueError, match="CHRONIC_DOCUMENT_CURRENT_KEY_ID '2027-01' is not a key"):
        _store(tmp_path, document_keys={"2026-01": old}, document_current_key_id="2027-01")


async def test_documents_go_to_a_real_s3_compatible_server_encrypted(
    tmp_path: Path, s3_server: S3Server
) -> None:
    store = _store(
        tmp_path,
        document_store_url=f"s3://{s3_server.bucket}/scans",
        document_store_endpoint=s3_server.endpoint,
        document_store_access_key_id=s3_server.access_key_id,
        document_store_secret_access_key=s3_server.secret_access_key,
    )
    scan = pdf_scan(2)
    kept = await store.put(scan)
    listed = s3_server.client().list_objects_v2(Bucket=s3_server.bucket)
    keys = [item["Key"] for item in listed["Contents"]]
    assert keys == [f"scans/{kept.sha256[:2]}/{kept.sha256}"]
    raw = s3_server.client().get_object(Bucket=s3_server.bucket, Key=keys[0])["Body"].read()
    assert scan not in raw and b"%PDF" not in raw
    assert await store.exists(kept.sha256)
    data, described = await store.get(kept.sha256)
    assert data == scan and described.pages == 2
    assert not (tmp_path / "documents").exists()


def test_pages_render_as_png_and_a_photo_loses_its_exif() -> None:
    first = render_page(pdf_scan(2), PDF, 2, width=600)
    with Image.open(io.BytesIO(first)) as page:
        assert page.format == "PNG" and page.width == 600
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make; GPS data would travel the same way
    taken = io.BytesIO()
    Image.new("RGB", (2000, 1000), "white").save(taken, format="JPEG", exif=exif)
    shown = render_page(taken.getvalue(), JPEG, 1, width=1200)
    with Image.open(io.BytesIO(shown)) as image:
        assert image.size == (1200, 600)
        assert not image.getexif()
    with pytest.raises(DocumentMissing):
        render_page(pdf_scan(1), PDF, 2)
    # A page 10 points wide and 14,000 long is drawn within the pixel budget, not 1200 wide.
    strip = FPDF(format=(10, 14_000), unit="pt")
    strip.add_page()
    tall = render_page(bytes(strip.output()), PDF, 1)
    with Image.open(io.BytesIO(tall)) as image:
        assert image.width * image.height <= 8_000_000
