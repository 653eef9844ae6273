# SPDX-License-Identifier: GPL-2.0-or-later
"""An independent reading of trace-cmd .dat files for the writer's tests, written from
trace-cmd.dat.v6(5) / trace-cmd.dat.v7(5) and what trace-cmd 3.1 really writes (8-byte
section sizes, a page size in the BUFFER option), not from lib/trace.

check_v7() walks a v7 file strictly: every section back to back up to the end of the file,
every description in the strings section, the options chain, every section option pointing
at a section of its id, the BUFFER option's per-CPU data page-aligned inside the flyrecord
section, compressed chunks that add up and hold whole pages. to_v6() rewrites a v7 file
(none, zlib, or zstd through the zstd program) as a v6 file with the same metadata and
the same pages, so that trace-cmd can read what it cannot decompress itself (this
trace-cmd is built without zlib) and its report can be compared byte for byte."""
import shutil
import struct
import subprocess
import zlib

OPT_DONE, OPT_BUFFER, OPT_STRINGS = 0, 3, 15
SECTION_OPTS = {16: "headers", 17: "ftrace events", 18: "events format", 19: "kallsyms",
                20: "printk", 21: "command lines"}


class DatError(Exception):
    pass


def _cstr(buf, pos):
    end = buf.index(b"\0", pos)
    return buf[pos:end].decode(), end + 1


def _decompress(comp, data):
    if comp == "zlib":
        try:
            return zlib.decompress(data)
        except zlib.error as e:
            raise DatError("zlib: %s" % e)
    if comp == "zstd":
        if not shutil.which("zstd"):
            raise DatError("zstd data and no zstd program to decompress it")
        p = subprocess.run(["zstd", "-d", "-q", "-c"], input=data, capture_output=True)
        if p.returncode:
            raise DatError("zstd: %s" % p.stderr.decode(errors="replace").strip())
        return p.stdout
    raise DatError("unknown compression %r" % comp)


def _options(data):
    """(id, payload) pairs of an options section's content, up to and with DONE."""
    out, pos = [], 0
    while pos < len(data):
        oid, size = struct.unpack_from("<HI", data, pos)
        pos += 6
        if pos + size > len(data):
            raise DatError("option %d runs past its section" % oid)
        out.append((oid, data[pos:pos + size]))
        pos += size
        if oid == OPT_DONE:
            break
    if not out or out[-1][0] != OPT_DONE:
        raise DatError("options section without DONE")
    return out


def check_v7(path):
    """Validate a v7 file; return a dict with its parts (decompressed)."""
    with open(path, "rb") as f:
        buf = f.read()
    if buf[:10] != b"\x17\x08\x44tracing":
        raise DatError("bad magic")
    version, pos = _cstr(buf, 10)
    if version != "7":
        raise DatError("version %r" % version)
    endian, long_size = buf[pos], buf[pos + 1]
    page_size, = struct.unpack_from("<I", buf, pos + 2)
    pos += 6
    comp, pos = _cstr(buf, pos)
    comp_ver, pos = _cstr(buf, pos)
    first_opts, = struct.unpack_from("<Q", buf, pos)
    pos += 8
    if endian != 0 or long_size not in (4, 8) or page_size & (page_size - 1):
        raise DatError("bad initial format")

    # Sections back to back up to the end of the file.
    sections = {}
    while pos < len(buf):
        if pos + 16 > len(buf):
            raise DatError("truncated section header at %d" % pos)
        sid, flags, desc, size = struct.unpack_from("<HHIQ", buf, pos)
        if pos + 16 + size > len(buf):
            raise DatError("section %d at %d runs past the end" % (sid, pos))
        if flags & ~1 or (flags and comp == "none"):
            raise DatError("section %d: flags %#x with compression %s" % (sid, flags, comp))
        sections[pos] = {"id": sid, "flags": flags, "desc": desc, "start": pos + 16,
                         "end": pos + 16 + size}
        pos += 16 + size

    def content(sec):
        raw = buf[sec["start"]:sec["end"]]
        if not sec["flags"]:
            return raw
        zsize, usize = struct.unpack_from("<II", raw, 0)
        if zsize + 8 != len(raw):
            raise DatError("compressed section size %d != %d + 8" % (len(raw), zsize))
        data = _decompress(comp, raw[8:])
        if len(data) != usize:
            raise DatError("section decompresses to %d bytes, not %d" % (len(data), usize))
        return data

    strings = b"".join(content(s) for s in sections.values() if s["id"] == OPT_STRINGS)
    if not strings:
        raise DatError("no strings section")
    for off, s in sections.items():
        if s["desc"] == 0xffffffff:
            continue
        if s["desc"] >= len(strings):
            raise DatError("section at %d: description %d out of the strings" % (off, s["desc"]))
        s["name"] = _cstr(strings, s["desc"])[0]

    # The options chain.
    options, at, seen = [], first_opts, set()
    while at:
        if at not in sections or sections[at]["id"] != OPT_DONE or at in seen:
            raise DatError("options offset %d is not an options section" % at)
        seen.add(at)
        opts = _options(content(sections[at]))
        options += opts[:-1]
        at, = struct.unpack("<Q", opts[-1][1])

    parts = {"comp": comp, "comp_version": comp_ver, "page_size": page_size,
             "long_size": long_size, "options": options, "sections": sections}
    for oid, data in options:
        if oid in SECTION_OPTS:
            off, = struct.unpack("<Q", data)
            if off not in sections or sections[off]["id"] != oid:
                raise DatError("option %d points at %d, not a section %d" % (oid, off, oid))
            parts[oid] = content(sections[off])
    missing = set(SECTION_OPTS) - set(parts)
    if missing:
        raise DatError("no section options %s" % sorted(missing))

    buffers = [d for i, d in options if i == OPT_BUFFER]
    if len(buffers) != 1:
        raise DatError("%d BUFFER options, expected one" % len(buffers))
    data = buffers[0]
    fly, = struct.unpack_from("<Q", data, 0)
    name, p = _cstr(data, 8)
    clock, p = _cstr(data, p)
    bpage, ncpu = struct.unpack_from("<II", data, p)
    p += 8
    if name != "" or bpage != page_size:
        raise DatError("BUFFER %r page size %d" % (name, bpage))
    sec = sections.get(fly)
    if not sec or sec["id"] != OPT_BUFFER:
        raise DatError("BUFFER offset %d is not a flyrecord section" % fly)
    cpus = {}
    for _ in range(ncpu):
        cpu, off, size = struct.unpack_from("<IQQ", data, p)
        p += 20
        if off % page_size or off < sec["start"] or off + size > sec["end"] or not size:
            raise DatError("CPU %d data at %d+%d outside its section" % (cpu, off, size))
        raw = buf[off:off + size]
        if sec["flags"]:
            nchunks, = struct.unpack_from("<I", raw, 0)
            q, pages = 4, []
            for _ in range(nchunks):
                zsize, usize = struct.unpack_from("<II", raw, q)
                if usize % page_size or usize > 10 * page_size:
                    raise DatError("CPU %d: chunk of %d bytes" % (cpu, usize))
                chunk = _decompress(comp, raw[q + 8:q + 8 + zsize])
                if len(chunk) != usize:
                    raise DatError("CPU %d: chunk decompresses to %d, not %d"
                                   % (cpu, len(chunk), usize))
                pages.append(chunk)
                q += 8 + zsize
            if q != size:
                raise DatError("CPU %d: chunks take %d bytes of %d" % (cpu, q, size))
            raw = b"".join(pages)
        if len(raw) % page_size:
            raise DatError("CPU %d: %d bytes, not whole pages" % (cpu, len(raw)))
        cpus[cpu] = raw
    parts.update(clock=clock, cpus=cpus)
    return parts


def to_v6(src, dst):
    """Rewrite the v7 file @src as a v6 file @dst (same metadata, options and pages)."""
    p = check_v7(src)
    ps = p["page_size"]
    ncpus = None
    opts = b""
    for oid, data in p["options"]:
        if oid == 8:
            ncpus, = struct.unpack("<I", data)
        if oid in (OPT_DONE, OPT_BUFFER) or oid in SECTION_OPTS:
            continue
        opts += struct.pack("<HI", oid, len(data)) + data
    if ncpus is None:
        raise DatError("no CPUCOUNT option")
    out = bytearray(b"\x17\x08\x44tracing6\0" + bytes([0, p["long_size"]])
                    + struct.pack("<I", ps))
    for oid in (16, 17, 18, 19, 20, 21):
        out += p[oid]
    out += struct.pack("<I", ncpus) + b"options  \0" + opts + struct.pack("<H", 0)
    out += b"flyrecord\0"
    clock = ("[%s]" % p["clock"]).encode()
    off = len(out) + 16 * ncpus + 8 + len(clock)
    off = (off + ps - 1) // ps * ps
    data = b""
    for cpu in range(ncpus):
        raw = p["cpus"].get(cpu, b"")
        out += struct.pack("<QQ", off + len(data), len(raw))
        data += raw
    out += struct.pack("<Q", len(clock)) + clock
    out += b"\0" * (off - len(out)) + data
    with open(dst, "wb") as f:
        f.write(out)
    return p
