#!/usr/bin/env python3
"""The tus 1.0 client of make bench, the same for every server.

    tus-client.py CREATION-URL FILE CHUNK-BYTES NAME

Creates an upload (POST with Upload-Length and the filename in
Upload-Metadata), then sends FILE in PATCHes of CHUNK-BYTES on one
keep-alive connection, each checked for 204 and the new Upload-Offset.
Prints "MB/s upload-path" (MB = 10^6 bytes, from the POST to the last
204); exits 1 with a reason on any other answer.
"""
import base64
import http.client
import os
import sys
import time
import urllib.parse


def fail(why):
    print(f"tus-client: {why}", file=sys.stderr)
    sys.exit(1)


url, path, chunk, name = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
size = os.path.getsize(path)
base = urllib.parse.urlsplit(url)
conn = http.client.HTTPConnection(base.hostname, base.port, timeout=300)
tus = {"Tus-Resumable": "1.0.0"}

t0 = time.perf_counter()
conn.request(
    "POST",
    base.path,
    headers={
        **tus,
        "Upload-Length": str(size),
        "Upload-Metadata": "filename " + base64.b64encode(name.encode()).decode(),
        "Content-Length": "0",
    },
)
r = conn.getresponse()
r.read()
if r.status != 201 or not r.getheader("Location"):
    fail(f"creation answered {r.status} {r.reason}")
# Location may be a path or an absolute URL: resolve it like tus clients do.
where = urllib.parse.urlsplit(urllib.parse.urljoin(url, r.getheader("Location")))
target = where.path + ("?" + where.query if where.query else "")

offset = 0
with open(path, "rb") as f:
    while offset < size:
        piece = f.read(chunk)
        if not piece:
            fail(f"{path} ended at {offset} of {size} bytes")
        conn.request(
            "PATCH",
            target,
            body=piece,
            headers={
                **tus,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
            },
        )
        r = conn.getresponse()
        r.read()
        if r.status != 204:
            fail(f"PATCH at {offset} answered {r.status} {r.reason}")
        now = r.getheader("Upload-Offset")
        if now != str(offset + len(piece)):
            fail(f"PATCH at {offset} of {len(piece)} bytes: Upload-Offset {now}")
        offset += len(piece)
took = time.perf_counter() - t0
conn.close()
print(f"{size / took / 1e6:.0f} {where.path}")
