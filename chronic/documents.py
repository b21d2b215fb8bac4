"""The document store: applicants' scans and photos, content-addressed and encrypted at rest.

An uploaded file is accepted only when its *content* is a PDF, a JPEG or a PNG — the first
bytes say which, and the file is then actually opened (pypdfium2 for a PDF, Pillow for an
image), so an executable renamed ``.pdf`` or a damaged file is refused whatever its name. Size
and page count are limited by settings. The server computes the SHA-256 of the plaintext; that
digest is the document's address and the only thing an application (and so a workflow) holds
of it.

At rest every document is AES-256-GCM ciphertext under a :class:`~chronic.codec.KeyRing` of its
own (``CHRONIC_DOCUMENT_KEYS``; the payload codec's ring is for Temporal payloads, and the two
rotate independently): a small header naming the key id, a fresh 12-byte nonce, then the
ciphertext and its tag. The digest is the associated data, so a blob moved to another address
fails authentication instead of showing the wrong person's scan.

One library reaches both backends: obstore's ``LocalStore`` under the state folder by default,
its ``S3Store`` for S3-compatible object storage (MinIO in the compose file) when
``CHRONIC_DOCUMENT_STORE_URL`` is ``s3://bucket/prefix``.

Every message of :class:`DocumentRefused` is written for the person who uploaded the file:
Simplified Chinese (what is wrong and what to do), and a line in English for the operator.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import math
import os
import threading
from typing import TYPE_CHECKING, Any

import obstore
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from obstore.exceptions import NotFoundError
from obstore.store import LocalStore, S3Store

from chronic.codec import NONCE_SIZE, KeyRing, configured_key_ring
from chronic.privacy import state_secret
from chronic.settings import Settings

if TYPE_CHECKING:
    from obstore.store import ObjectStore

PDF = "application/pdf"
JPEG = "image/jpeg"
PNG = "image/png"
MEDIA_TYPES = (PDF, JPEG, PNG)
EXTENSIONS = {PDF: "pdf", JPEG: "jpg", PNG: "png"}
DEV_KEY_NAME = "document-key-dev"
_HEADER = b"chronic-document:1:"
_MAX_IMAGE_PIXELS = 60_000_000
"""A 60-megapixel photo is already far more than a phone takes; bigger is a decompression bomb."""


_PDFIUM = threading.Lock()
"""pdfium is not thread-safe: one PDF call at a time (they run off the event loop, in threads)."""
_MAX_RENDERED_PIXELS = 8_000_000
"""Largest page image shown to an expert (a 1200-pixel-wide A4 page is about 1.7 million)."""


class DocumentRefused(ValueError):
    """The file cannot be accepted: ``said`` tells the person who uploaded it why and what to
    do (Chinese); ``detail`` says it for the operator (English). ``str()`` holds both."""

    def __init__(self, said: str, detail: str) -> None:
        super().__init__(f"{said} ({detail})")
        self.said = said
        self.detail = detail


class DocumentMissing(LookupError):
    """No document is stored under this digest (or it cannot be read with the key ring)."""


@dataclasses.dataclass(frozen=True)
class Document:
    """What the server knows of a checked file: its digest, type, size and pages."""

    sha256: str
    media_type: str
    size: int
    pages: int

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.media_type]


# ---- checking a file ---------------------------------------------------------------------------


def sniff(data: bytes) -> str | None:
    """The media type the first bytes announce (PDF, JPEG or PNG), or None."""
    if data.startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    return None


def _mib(size: int) -> str:
    """``10 MB``, ``0.2 MB``."""
    return f"{size / (1024 * 1024):.1f}".removesuffix(".0") + " MB"


def inspect(data: bytes, *, max_bytes: int, max_pages: int) -> Document:
    """Check an uploaded file by its content and describe it.

    Raises:
        DocumentRefused: empty, too large, not a PDF/JPEG/PNG by content, damaged, protected by
            a password, or a PDF with more pages than allowed.
    """
    if not data:
        raise DocumentRefused("文件是空的：请重新选择扫描件或照片后上传。", "the file is empty")
    if len(data) > max_bytes:
        raise DocumentRefused(
            f"文件太大，每份材料不能超过 {_mib(max_bytes)}：请压缩图片、降低扫描分辨率或分成几份"
            "上传。",
            f"the file has more than {max_bytes} bytes",
        )
    media_type = sniff(data)
    if media_type is None:
        raise DocumentRefused(
            "文件不是 PDF、JPG 或 PNG 格式（按文件内容判断，与文件名无关）：请上传扫描件的 PDF "
            "或手机拍摄的照片。",
            "the content is not a PDF, JPEG or PNG, whatever its name says",
        )
    pages = _pdf_pages(data) if media_type == PDF else _image_pages(data)
    if pages > max_pages:
        raise DocumentRefused(
            f"PDF 共 {pages} 页，每份材料最多 {max_pages} 页：请只上传与本次申请有关的页，"
            "或分成几份上传。",
            f"the PDF has {pages} pages; at most {max_pages}",
        )
    return Document(hashlib.sha256(data).hexdigest(), media_type, len(data), pages)


def _pdf_pages(data: bytes) -> int:
    with _PDFIUM:
        return _pdf_pages_locked(data)


def _pdf_pages_locked(data: bytes) -> int:
    import pypdfium2

    try:
        pdf = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as error:
        if "password" in str(error).lower():
            raise DocumentRefused(
                "PDF 设置了密码，无法打开：请上传没有密码的文件。", "the PDF is password-protected"
            ) from None
        raise DocumentRefused(
            "PDF 文件已损坏，无法打开：请重新扫描或重新导出后上传。", "the PDF cannot be opened"
        ) from None
    try:
        pages = len(pdf)
    finally:
        pdf.close()
    if pages == 0:
        raise DocumentRefused("PDF 没有任何页面：请重新扫描后上传。", "the PDF has no pages")
    return pages


def _image_pages(data: bytes) -> int:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > _MAX_IMAGE_PIXELS:
                raise DocumentRefused(
                    f"图片尺寸过大（{width}×{height} 像素）：请用手机正常拍照或缩小后上传。",
                    f"the image has {width}x{height} pixels",
                )
            image.load()  # decodes the pixels: a truncated or forged body fails here
    except DocumentRefused:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise DocumentRefused(
            "图片文件已损坏，无法打开：请重新拍照或重新导出后上传。", "the image cannot be decoded"
        ) from None
    return 1


# ---- showing a document ------------------------------------------------------------------------


def render_page(data: bytes, media_type: str, page: int, *, width: int = 1200) -> bytes:
    """Page ``page`` (1-based) of a stored document as a PNG, for showing it in the browser.

    A PDF page is rendered with pdfium at ``width`` pixels; a photo is re-encoded as PNG no
    wider than ``width``, which also leaves behind its EXIF data (where it was taken).

    Raises:
        DocumentMissing: no such page.
    """
    if media_type == PDF:
        with _PDFIUM:
            image = _render_pdf_page(data, page, width)
    else:
        from PIL import Image, ImageOps

        if page != 1:
            raise DocumentMissing(f"page {page}")
        with Image.open(io.BytesIO(data)) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")  # photos taken sideways
        if image.width > width:
            image = image.resize((width, round(image.height * width / image.width)))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _render_pdf_page(data: bytes, page: int, width: int) -> Any:
    import pypdfium2

    pdf = pypdfium2.PdfDocument(data)
    try:
        if not 1 <= page <= len(pdf):
            raise DocumentMissing(f"page {page}")
        pdf_page = pdf[page - 1]
        points_wide = max(pdf_page.get_width(), 1.0)
        points_high = max(pdf_page.get_height(), 1.0)
        # A page drawn 1 point wide and a mile long must not become a gigapixel image.
        scale = min(
            width / points_wide,
            4.0,
            math.sqrt(_MAX_RENDERED_PIXELS / (points_wide * points_high)),
        )
        return pdf_page.render(scale=scale).to_pil()
    finally:
        pdf.close()


async def render_page_async(data: bytes, media_type: str, page: int) -> bytes:
    """:func:`render_page` in a thread, so the hall's event loop keeps serving meanwhile."""
    return await asyncio.to_thread(render_page, data, media_type, page)


# ---- the store ---------------------------------------------------------------------------------


def key_ring(settings: Settings) -> KeyRing:
    """``CHRONIC_DOCUMENT_KEYS`` / ``CHRONIC_DOCUMENT_CURRENT_KEY_ID``, else a development key
    generated into the state folder (key id ``dev-1``)."""
    return configured_key_ring(
        settings.document_keys,
        settings.document_current_key_id,
        prefix="CHRONIC_DOCUMENT",
        encrypts="documents",
        development=lambda: state_secret(settings, DEV_KEY_NAME),
    )


def object_store(settings: Settings) -> ObjectStore:
    """The configured backend: S3-compatible storage for an ``s3://`` URL, else the state
    folder's ``documents/``."""
    url = settings.document_store_url
    if url is None:
        folder = settings.state_path / "documents"
        folder.mkdir(mode=0o700, exist_ok=True)
        return LocalStore(folder)
    if not url.startswith("s3://"):
        raise ValueError(
            f"CHRONIC_DOCUMENT_STORE_URL {url!r} is not s3://bucket[/prefix]; leave it unset to "
            "keep documents in the state folder"
        )
    config: dict[str, Any] = {"region": settings.document_store_region}
    if settings.document_store_endpoint:
        config["endpoint"] = settings.document_store_endpoint
    if settings.document_store_access_key_id:
        config["access_key_id"] = settings.document_store_access_key_id
    if settings.document_store_secret_access_key:
        config["secret_access_key"] = settings.document_store_secret_access_key.get_secret_value()
    endpoint = settings.document_store_endpoint or ""
    return S3Store.from_url(
        url,
        config=config,  # type: ignore[arg-type]
        client_options={"allow_http": endpoint.startswith("http://")},
    )


class DocumentStore:
    """Put, get and render documents by their SHA-256, encrypted under the key ring."""

    def __init__(
        self, store: ObjectStore, ring: KeyRing, *, max_bytes: int, max_pages: int
    ) -> None:
        self._store = store
        self._ring = ring
        self._ciphers = {key_id: AESGCM(key) for key_id, key in ring.keys.items()}
        self.max_bytes = max_bytes
        self.max_pages = max_pages

    @classmethod
    def from_settings(cls, settings: Settings) -> DocumentStore:
        return cls(
            object_store(settings),
            key_ring(settings),
            max_bytes=settings.document_max_bytes,
            max_pages=settings.document_max_pages,
        )

    @staticmethod
    def path(sha256: str) -> str:
        """Where a document lives in the store: ``ab/abcdef…`` (few entries per folder)."""
        return f"{sha256[:2]}/{sha256}"

    def check(self, data: bytes) -> Document:
        """:func:`inspect` with this store's limits (DocumentRefused when it is refused)."""
        return inspect(data, max_bytes=self.max_bytes, max_pages=self.max_pages)

    async def put(self, data: bytes) -> Document:
        """Check, encrypt and keep ``data``; a document already kept is not written again.

        Raises:
            DocumentRefused: the file is not acceptable (nothing is stored).
        """
        document = await asyncio.to_thread(self.check, data)  # opens the file: off the loop
        path = self.path(document.sha256)
        try:
            await obstore.head_async(self._store, path)
        except (NotFoundError, FileNotFoundError):
            await obstore.put_async(self._store, path, self._encrypt(document.sha256, data))
        return document

    async def get(self, sha256: str) -> tuple[bytes, Document]:
        """The plaintext of a kept document and its description.

        Raises:
            DocumentMissing: nothing kept under ``sha256``, or it fails authentication.
        """
        digest = sha256.lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise DocumentMissing(sha256)
        try:
            blob = await obstore.get_async(self._store, self.path(digest))
            stored = bytes(await blob.bytes_async())
        except (NotFoundError, FileNotFoundError):
            raise DocumentMissing(sha256) from None
        data = self._decrypt(digest, stored)
        media_type = sniff(data) or ""
        pages = await asyncio.to_thread(_pdf_pages, data) if media_type == PDF else 1
        return data, Document(digest, media_type, len(data), pages)

    async def exists(self, sha256: str) -> bool:
        try:
            await obstore.head_async(self._store, self.path(sha256.lower()))
        except (NotFoundError, FileNotFoundError):
            return False
        return True

    def _encrypt(self, sha256: str, data: bytes) -> bytes:
        key_id = self._ring.current
        nonce = os.urandom(NONCE_SIZE)
        ciphertext = self._ciphers[key_id].encrypt(nonce, data, sha256.encode())
        return _HEADER + key_id.encode() + b"\n" + nonce + ciphertext

    def _decrypt(self, sha256: str, blob: bytes) -> bytes:
        if not blob.startswith(_HEADER) or b"\n" not in blob:
            raise DocumentMissing(f"{sha256}: not a chronic document")
        head, body = blob[len(_HEADER) :].split(b"\n", 1)
        cipher = self._ciphers.get(head.decode("utf-8", errors="replace"))
        if cipher is None:
            raise DocumentMissing(
                f"{sha256}: encrypted with key id {head!r}, which is not in CHRONIC_DOCUMENT_KEYS"
            )
        try:
            data = cipher.decrypt(body[:NONCE_SIZE], body[NONCE_SIZE:], sha256.encode())
        except InvalidTag:
            raise DocumentMissing(f"{sha256}: failed authentication") from None
        return data
