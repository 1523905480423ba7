#!/usr/bin/env python3
"""Uploads one file with tuspy (the tus 1.0 client for Python), resumable
across processes: the upload URL is kept in a tuspy FileStorage, so a second
run with the same --storage continues where the first one stopped (tuspy
asks the server for the offset with a HEAD).

  PYTHONPATH=.tools/python python3 tests/clients/tuspy_upload.py \
      --endpoint http://127.0.0.1:8080/in/ --file big.iso --name big.iso \
      --storage urls.json [--auth user:pass] [--chunk 1048576] [--sleep 0.01]

Prints one line per event, flushed at once so that a test can follow it:
`start OFFSET URL|-` (OFFSET from the server when resuming), `created URL`,
`offset N` after every accepted chunk, `done`.
"""
import argparse
import base64
import sys
import time

from tusclient.client import TusClient
from tusclient.storage.filestorage import FileStorage


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True, help="the creation URL (a folder)")
    p.add_argument("--file", required=True)
    p.add_argument("--name", required=True, help="Upload-Metadata filename")
    p.add_argument("--storage", required=True, help="tuspy FileStorage for the URL")
    p.add_argument("--auth", help="USER:PASS sent as HTTP Basic")
    p.add_argument("--chunk", type=int, default=1 << 20)
    p.add_argument("--sleep", type=float, default=0.0, help="pause after each chunk")
    p.add_argument("--checksum", action="store_true", help="sha1 Upload-Checksum")
    a = p.parse_args()

    headers = {}
    if a.auth:
        token = base64.b64encode(a.auth.encode()).decode("ascii")
        headers["Authorization"] = "Basic " + token
    client = TusClient(a.endpoint, headers=headers)
    uploader = client.uploader(
        file_path=a.file,
        chunk_size=a.chunk,
        metadata={"filename": a.name},
        store_url=True,
        url_storage=FileStorage(a.storage),
        upload_checksum=a.checksum,
    )
    print(f"start {uploader.offset} {uploader.url or '-'}", flush=True)
    if not uploader.url:
        uploader.set_url(uploader.create_url())
        uploader.offset = 0
        print(f"created {uploader.url}", flush=True)
    size = uploader.get_file_size()
    while uploader.offset < size:
        uploader.upload_chunk()
        print(f"offset {uploader.offset}", flush=True)
        if a.sleep:
            time.sleep(a.sleep)
    print("done", flush=True)


if __name__ == "__main__":
    sys.exit(main())
