"""Uploads FILE as NAME with tuspy (tus 1.0) and prints the upload URL the
server gave. Credentials, if any, come from ACCESS_AUTHORIZATION (an
`Authorization` value) and are sent as a header, as tuspy's users do.

usage: PYTHONPATH=.tools/python python3 access_tuspy.py ENDPOINT FILE NAME
"""
import os
import sys

from tusclient import client

endpoint, path, name = sys.argv[1:4]
headers = {}
if os.environ.get("ACCESS_AUTHORIZATION"):
    headers["Authorization"] = os.environ["ACCESS_AUTHORIZATION"]
c = client.TusClient(endpoint, headers=headers)
uploader = c.uploader(file_path=path, chunk_size=1 << 20, metadata={"filename": name})
uploader.upload()
print(uploader.url)
