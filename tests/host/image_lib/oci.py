#!/usr/bin/env python3
"""tests/host/image_lib/oci.py - build OCI image layouts and hostile layers
for the image host tests, with the Python standard library only.

  oci.py layout OUT TAG LAYER...   write an OCI layout (oci-layout, index.json,
                                   blobs/sha256/...) with one manifest; each
                                   LAYER is PATH[:gzip|zstd|none], PATH being a
                                   directory (tarred, sorted, numeric owners)
                                   or a .tar file used as is
  oci.py evil KIND OUT.tar         write a hostile layer: traversal, absolute,
                                   symlink-escape, hardlink-escape, device
  oci.py serve DIR PORT REPO [slow] a tiny registry that serves the layout DIR
                                   for REPO and wants a bearer token from its
                                   own /token endpoint; the first blob request
                                   for each layer is cut in half (resume test);
                                   with "slow" that first answer stalls for
                                   30 s instead; it logs requests to
                                   DIR/requests.log
"""
import gzip
import hashlib
import http.server
import io
import json
import os
import subprocess
import sys
import tarfile
import time


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put_blob(out, data):
    d = sha(data)
    os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(out, "blobs", "sha256", d[7:]), "wb") as f:
        f.write(data)
    return d


def tar_dir(path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(dirs + files):
                full = os.path.join(root, name)
                rel = os.path.relpath(full, path)
                info = t.gettarinfo(full, rel)
                info.uname = info.gname = ""
                if info.isreg():
                    with open(full, "rb") as f:
                        t.addfile(info, f)
                else:
                    t.addfile(info)
    return buf.getvalue()


def compress(data, comp):
    if comp == "gzip":
        return gzip.compress(data, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"
    if comp == "zstd":
        z = subprocess.run(["zstd", "-q", "-c"], input=data, stdout=subprocess.PIPE, check=True)
        return z.stdout, "application/vnd.oci.image.layer.v1.tar+zstd"
    return data, "application/vnd.oci.image.layer.v1.tar"


def image_manifest(out, specs, arch):
    """Write layers, config and manifest blobs; return the manifest's descriptor."""
    layers, diffs = [], []
    for spec in specs:
        path, _, comp = spec.partition(":")
        raw = tar_dir(path) if os.path.isdir(path) else open(path, "rb").read()
        blob, mt = compress(raw, comp or "gzip")
        layers.append({"mediaType": mt, "digest": put_blob(out, blob), "size": len(blob)})
        diffs.append(sha(raw))
    config = json.dumps({
        "created": "2026-01-02T03:04:05Z", "architecture": arch, "os": "linux",
        "config": {}, "rootfs": {"type": "layers", "diff_ids": diffs},
    }).encode()
    cfg = {"mediaType": "application/vnd.oci.image.config.v1+json",
           "digest": put_blob(out, config), "size": len(config)}
    manifest = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": cfg, "layers": layers}).encode()
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": put_blob(out, manifest), "size": len(manifest),
            "platform": {"architecture": arch, "os": "linux"}}


def layout(out, tag, specs):
    """An OCI layout; with MULTIARCH_DECOY=DIR in the environment, tag names
    an image index listing an arm64 image made of DIR first, then amd64."""
    os.makedirs(out, exist_ok=True)
    top = image_manifest(out, specs, "amd64")
    decoy = os.environ.get("MULTIARCH_DECOY")
    if decoy:
        arm = image_manifest(out, [decoy + ":gzip"], "arm64")
        idx = json.dumps({"schemaVersion": 2,
                          "mediaType": "application/vnd.oci.image.index.v1+json",
                          "manifests": [arm, top]}).encode()
        top = {"mediaType": "application/vnd.oci.image.index.v1+json",
               "digest": put_blob(out, idx), "size": len(idx)}
    top = dict(top, annotations={"org.opencontainers.image.ref.name": tag})
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [top]}, f)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


def evil(kind, out):
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
        def add(name, type_=tarfile.REGTYPE, data=b"pwned\n", link=""):
            i = tarfile.TarInfo(name)
            i.type = type_
            i.linkname = link
            i.mode = 0o644 if type_ != tarfile.DIRTYPE else 0o755
            if type_ == tarfile.REGTYPE:
                i.size = len(data)
                t.addfile(i, io.BytesIO(data))
            else:
                t.addfile(i)
        add("ok.txt", data=b"fine\n")
        if kind == "traversal":
            add("../../../../../../tmp/kvmbox-evil-traversal")
        elif kind == "absolute":
            add("/tmp/kvmbox-evil-absolute")
        elif kind == "symlink-escape":
            add("escape", tarfile.SYMTYPE, link=os.environ["EVIL_DIR"])
            add("escape/pwned")
        elif kind == "symlink-root":
            add("abs", tarfile.SYMTYPE, link="/")
            add("abs/landed-abs")
            add("up", tarfile.SYMTYPE, link="../../../../..")
            add("up/landed-up")
        elif kind == "hardlink-escape":
            add("hl", tarfile.LNKTYPE, link=os.environ["EVIL_DIR"] + "/victim")
        elif kind == "device":
            i = tarfile.TarInfo("dev/evil-mem")
            i.type, i.devmajor, i.devminor = tarfile.CHRTYPE, 1, 1
            t.addfile(i)
            add("after-device.txt")


class Registry(http.server.BaseHTTPRequestHandler):
    TOKEN = "test-token-0123456789"

    def log_message(self, *a):
        with open(os.path.join(self.server.root, "requests.log"), "a") as f:
            f.write("%s %s range=%s auth=%s\n" % (
                self.command, self.path, self.headers.get("Range"),
                "yes" if self.headers.get("Authorization") else "no"))

    def send(self, code, body=b"", ctype="application/json", extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        srv = self.server
        if self.path.startswith("/token?"):
            q = dict(p.split("=", 1) for p in self.path[7:].split("&"))
            if q.get("service") != "mockreg" or "pull" not in q.get("scope", ""):
                return self.send(400, b'{"errors":["bad token request"]}')
            return self.send(200, json.dumps({"token": self.TOKEN}).encode())
        if self.headers.get("Authorization") != "Bearer " + self.TOKEN:
            realm = "http://127.0.0.1:%d/token" % srv.server_port
            return self.send(401, b'{"errors":[]}', extra=[(
                "WWW-Authenticate", 'Bearer realm="%s",service="mockreg",scope="repository:%s:pull"'
                % (realm, srv.repo))])
        prefix = "/v2/%s/" % srv.repo
        if not self.path.startswith(prefix):
            return self.send(404)
        kind, _, ref = self.path[len(prefix):].partition("/")
        if kind == "manifests":
            if ref.startswith("sha256:"):
                d = ref
            else:
                idx = json.load(open(os.path.join(srv.root, "index.json")))
                d = idx["manifests"][0]["digest"]
            data = open(os.path.join(srv.root, "blobs", "sha256", d[7:]), "rb").read()
            return self.send(200, data, json.loads(data).get("mediaType", "x"))
        path = os.path.join(srv.root, "blobs", "sha256", ref[7:])
        if not os.path.exists(path):
            return self.send(404)
        data = open(path, "rb").read()
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            body = data[start:]
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return self.wfile.write(body)
        if ref not in srv.cut and len(data) > 10000:
            srv.cut.add(ref)    # first time: promise everything, send half
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[:len(data) // 2])
            self.wfile.flush()
            if srv.slow:        # stall, so the client can be killed mid-blob
                time.sleep(30)
            self.close_connection = True
            return
        return self.send(200, data, "application/octet-stream")


def serve(root, port, repo, mode=""):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Registry)
    srv.daemon_threads = True
    srv.root, srv.repo, srv.cut, srv.slow = root, repo, set(), mode == "slow"
    srv.serve_forever()


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "layout":
        layout(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif cmd == "evil":
        evil(sys.argv[2], sys.argv[3])
    elif cmd == "serve":
        serve(*sys.argv[2:6])
    else:
        sys.exit("unknown command " + cmd)
