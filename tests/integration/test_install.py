"""`meson install` of the build under test into a DESTDIR: the programs and their man pages,
the Follower library (libtwinfollower.so with its soname, the public headers under
include/twin/, twinfollower.pc), and a follower built against the installed library with
pkg-config, as docs/follower.md tells a user, following the reference twin."""

import glob
import json
import os
import re
import shutil
import subprocess

import pytest

from testlib.events import PING
from testlib.example import Example
from testlib.paths import SOURCE_ROOT, build_dir
from testlib.twin import Twin

PUBLIC_DIR = os.path.join(SOURCE_ROOT, "core", "include", "twin")

pytestmark = pytest.mark.skipif(shutil.which("meson") is None or shutil.which("pkg-config") is None,
                                reason="meson or pkg-config not installed")


def introspect(what):
    out = subprocess.run(["meson", "introspect", build_dir(), what], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


class Installed:
    """The tree `meson install --destdir` made, and the build's install directories in it."""

    def __init__(self, destdir):
        self.destdir = destdir
        opts = {o["name"]: o["value"] for o in introspect("--buildoptions")}
        self.opts = opts
        self.version = introspect("--projectinfo")["version"]
        self.prefix = opts["prefix"]

        def under(key):  # an install directory may be relative to the prefix or absolute
            return destdir + os.path.join(self.prefix, opts[key])
        self.bindir, self.libdir = under("bindir"), under("libdir")
        self.includedir, self.mandir = under("includedir"), under("mandir")

    def pkg_env(self):
        """pkg-config finds twinfollower.pc in the DESTDIR and puts the DESTDIR before every
        path it gives (the .pc names the real prefix)."""
        env = dict(os.environ)
        env["PKG_CONFIG_PATH"] = os.path.join(self.libdir, "pkgconfig")
        env["PKG_CONFIG_SYSROOT_DIR"] = self.destdir
        return env

    def pkg_config(self, *args):
        return subprocess.run(["pkg-config"] + list(args) + ["twinfollower"], check=True,
                              capture_output=True, text=True, env=self.pkg_env()).stdout.split()

    def compiler(self):
        """cc, or, for a sanitized build, the build's compiler with its sanitizers: the
        program that loads a sanitized library must carry their runtime."""
        sanitize = self.opts.get("b_sanitize", "none")
        if sanitize in ("none", "", []):
            return ["cc"]
        if isinstance(sanitize, list):
            sanitize = ",".join(sanitize)
        for target in introspect("--targets"):
            for sources in target["target_sources"]:
                if sources.get("language") == "c":
                    return sources["compiler"] + ["-fsanitize=" + sanitize]
        raise AssertionError("no C compiler in the build's targets")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    destdir = str(tmp_path_factory.mktemp("destdir"))
    r = subprocess.run(["meson", "install", "-C", build_dir(), "--destdir", destdir],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return Installed(destdir)


def public_functions():
    """The functions the public headers declare (not the static inline ones)."""
    names = set()
    for path in glob.glob(os.path.join(PUBLIC_DIR, "*.h")):
        with open(path) as f:
            src = f.read()
        src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
        src = re.sub(r"//[^\n]*", "", src)
        decl = re.compile(r"^(?!typedef|static|#|struct\s+\w+\s*\{|enum|union)"
                          r"[A-Za-z_][\w \t*]*?\b([A-Za-z_]\w*)\s*\(", re.M)
        names.update(m.group(1) for m in decl.finditer(src))
    return names


def run(argv, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    assert r.returncode == 0, "%s: %s%s" % (" ".join(argv), r.stdout, r.stderr)
    return r.stdout


def test_programs_and_man_pages(installed):
    for prog in ("twinfs", "twinfs-dispatch"):
        path = os.path.join(installed.bindir, prog)
        assert os.access(path, os.X_OK), path
        out = run([path, "--version"])
        assert installed.version in out
        man = os.path.join(installed.mandir, "man1", prog + ".1")
        with open(man, "rb") as got, open(os.path.join(SOURCE_ROOT, "docs", prog + ".1"),
                                          "rb") as want:
            assert got.read() == want.read()


def test_shared_library_soname_and_links(installed):
    major = installed.version.split(".")[0]
    real = "libtwinfollower.so." + installed.version
    so = os.path.join(installed.libdir, "libtwinfollower.so")
    assert os.readlink(so) == "libtwinfollower.so." + major
    assert os.readlink(so + "." + major) == real
    assert os.path.isfile(os.path.join(installed.libdir, real))
    dyn = run(["readelf", "-d", so])
    assert "Library soname: [libtwinfollower.so.%s]" % major in dyn
    # Nothing of the build tree leaks into the installed library.
    assert "RUNPATH" not in dyn and "RPATH" not in dyn
    # No static library and nothing else is installed beside it.
    assert sorted(os.listdir(installed.libdir)) == sorted(
        ["libtwinfollower.so", "libtwinfollower.so." + major, real, "pkgconfig"])


def test_library_exports_only_the_public_api(installed):
    so = os.path.join(installed.libdir, "libtwinfollower.so")
    out = run(["nm", "-D", "--defined-only", so])
    exported = {line.split()[-1].split("@")[0] for line in out.splitlines()
                if line.split()[1] in "TtDdBbRrVvWwi"}
    exported.discard("TWINFOLLOWER_0")
    want = public_functions()
    assert len(want) > 30
    assert exported == want


def test_headers_are_the_public_ones_and_self_contained(installed, tmp_path):
    top = os.listdir(installed.includedir)
    assert top == ["twin"]
    got = sorted(os.listdir(os.path.join(installed.includedir, "twin")))
    want = sorted(os.path.basename(p) for p in glob.glob(os.path.join(PUBLIC_DIR, "*.h")))
    assert got == want
    cflags = installed.pkg_config("--cflags")
    assert "-I" + installed.includedir in cflags
    for h in got:
        src = tmp_path / ("only_" + h.replace(".h", ".c"))
        src.write_text("#include <twin/%s>\n" % h)
        # Only the pkg-config flags: no -D_GNU_SOURCE, no source tree.
        run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-fsyntax-only"] + cflags
            + [str(src)], cwd=str(tmp_path))


def test_pkg_config_file(installed):
    assert installed.pkg_config("--modversion") == [installed.version]
    libs = installed.pkg_config("--libs")
    assert "-L" + installed.libdir in libs and "-ltwinfollower" in libs
    # json_t is in follower.h: jansson is a public requirement, the others private.
    requires = installed.pkg_config("--print-requires")
    assert requires == ["jansson"]
    private = installed.pkg_config("--print-requires-private")
    assert set(private) == {"libcurl", "avro-c"}


class InstalledExample(Example):
    """follower_example built from docs/examples against the installed library."""

    def __init__(self, binary, env, *args, **kw):
        super().__init__(*args, **kw)
        self._argv[0] = binary
        self.env = env


def test_example_built_with_pkg_config_follows_the_twin(installed, tmp_path):
    binary = str(tmp_path / "follower_example")
    src = os.path.join(SOURCE_ROOT, "docs", "examples", "follower_example.c")
    run(installed.compiler() + ["-Wall", "-Werror", "-o", binary, src]
        + installed.pkg_config("--cflags", "--libs"))
    assert "Shared library: [libtwinfollower.so.0]" in run(["readelf", "-d", binary])

    tw = Twin(tmp_path).start()
    try:
        tw.create_asset("a1")
        tw.put_schema("Ping", 1, PING)
        tw.publish_batch([{"asset": "a1", "name": "Ping", "version": 1, "data": {"n": i}}
                          for i in range(3)])
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = installed.libdir
        ex = InstalledExample(binary, env, tw.url, tmp_path / "state" / "tracker",
                              log_dir=tmp_path).start()
        try:
            ex.wait_for(lambda e: e.has("internal eof_replay") and len(e.acks()) >= 3, 60)
            with open("/proc/%d/maps" % ex.proc.pid) as f:
                maps = f.read()
            assert os.path.join(installed.libdir, "libtwinfollower.so." + installed.version) \
                in maps
            seq, _ = tw.publish("a1", "Ping", 1, {"n": 3})
            ex.wait_for(lambda e: seq in e.acks(), 60)
            assert [e[0] for e in ex.events()] == sorted(ex.acks())
            assert [(e[1], e[2], e[3]) for e in ex.events()] == \
                [("a1", i, "Ping") for i in range(4)]
            assert ex.has("asset_created a1")
        finally:
            assert ex.stop() == 0
        assert ex.has("stopped")
    finally:
        tw.stop()
