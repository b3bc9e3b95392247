"""Safe extraction of uploaded ZIPs: what lands on disk, and what is refused before it can."""

import io
import stat
import struct
import zipfile

import pytest

from catalog.archives import ArchiveLimits, UnsafeArchive, archive_extract

LIMITS = ArchiveLimits(max_files=10, max_bytes=10 * 1024 * 1024)


def make_zip(members: dict[str, bytes], *, compression=zipfile.ZIP_DEFLATED) -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    buf.seek(0)
    return buf


def test_photos_are_extracted_under_the_target(tmp_path, photo_bytes):
    source = make_zip(
        {"tools/hammer1.webp": photo_bytes("hammer1.webp"), "cup.webp": photo_bytes("cup.webp")}
    )
    result = archive_extract(source, tmp_path / "out", limits=LIMITS)
    assert (tmp_path / "out" / "tools" / "hammer1.webp").read_bytes() == photo_bytes("hammer1.webp")
    assert (tmp_path / "out" / "cup.webp").exists()
    assert result.root == tmp_path / "out"
    assert len(result.files) == 2


def test_a_single_folder_wrapping_category_folders_becomes_the_root(tmp_path, photo_bytes):
    source = make_zip({"catalog/tools/hammer1.webp": photo_bytes("hammer1.webp")})
    result = archive_extract(source, tmp_path / "out", limits=LIMITS)
    assert result.root == tmp_path / "out" / "catalog"
    assert result.target == tmp_path / "out"


def test_a_single_folder_of_photos_stays_a_category(tmp_path, photo_bytes):
    source = make_zip({"tools/hammer1.webp": photo_bytes("hammer1.webp")})
    assert archive_extract(source, tmp_path / "out", limits=LIMITS).root == tmp_path / "out"


@pytest.mark.parametrize(
    "name", ["../evil.jpg", "photos/../../evil.jpg", "/etc/evil.jpg", "C:/evil.jpg", "..\\evil.jpg"]
)
def test_paths_outside_the_target_refuse_the_whole_zip(tmp_path, name, photo_bytes):
    source = make_zip({"good.webp": photo_bytes("cup.webp"), name: b"x"})
    with pytest.raises(UnsafeArchive, match="unsafe path"):
        archive_extract(source, tmp_path / "out", limits=LIMITS)
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "evil.jpg").exists()


def test_a_symlink_member_is_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        link = zipfile.ZipInfo("link.jpg")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(UnsafeArchive, match="symbolic link"):
        archive_extract(buf, tmp_path / "out", limits=LIMITS)
    assert not (tmp_path / "out").exists()


def test_too_many_files_are_refused(tmp_path):
    source = make_zip({f"p{i}.jpg": b"x" for i in range(11)})
    with pytest.raises(UnsafeArchive, match="11 files; the limit is 10"):
        archive_extract(source, tmp_path / "out", limits=LIMITS)


def test_too_many_unpacked_bytes_are_refused(tmp_path):
    source = make_zip({"big.bin": bytes(range(256)) * 8192}, compression=zipfile.ZIP_STORED)  # 2 MB
    with pytest.raises(UnsafeArchive, match="unpacks to more than 1 MB"):
        archive_extract(source, tmp_path / "out", limits=ArchiveLimits(max_files=10, max_bytes=1024 * 1024))


def test_a_zip_bomb_ratio_is_refused(tmp_path):
    source = make_zip({"bomb.jpg": bytes(50 * 1024 * 1024)})  # 50 MB of zeros packs to ~50 KB
    assert len(source.getvalue()) < 200_000
    with pytest.raises(UnsafeArchive, match="zip bomb"):
        archive_extract(source, tmp_path / "out", limits=ArchiveLimits(max_files=10, max_bytes=10**9))
    assert not (tmp_path / "out").exists()


def _forge_central_size(data: bytes, size: int) -> bytes:
    """Rewrite the uncompressed size of the first member in the central directory (a lying ZIP)."""
    at = data.rfind(b"PK\x01\x02")
    return data[: at + 24] + struct.pack("<I", size) + data[at + 28 :]


def test_a_zip_lying_about_sizes_is_refused_while_streaming(tmp_path):
    honest = make_zip({"photo.jpg": bytes(range(256)) * 4096}).getvalue()  # 1 MB, declared 1 MB
    forged = io.BytesIO(_forge_central_size(honest, 100))  # now claims 100 bytes
    with pytest.raises(UnsafeArchive, match="sizes do not match"):
        archive_extract(forged, tmp_path / "out", limits=ArchiveLimits(max_files=10, max_bytes=1000))
    assert not (tmp_path / "out").exists()


def test_not_a_zip_is_refused_with_a_clear_message(tmp_path):
    with pytest.raises(UnsafeArchive, match="not a readable ZIP"):
        archive_extract(io.BytesIO(b"hello, I am a text file"), tmp_path / "out", limits=LIMITS)


def test_mac_resource_folders_are_skipped(tmp_path, photo_bytes):
    source = make_zip({"cup.webp": photo_bytes("cup.webp"), "__MACOSX/._cup.webp": b"junk"})
    result = archive_extract(source, tmp_path / "out", limits=LIMITS)
    assert [path.name for path in result.files] == ["cup.webp"]
    assert not (tmp_path / "out" / "__MACOSX").exists()
