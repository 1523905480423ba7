#!/bin/sh
# tus 1.0 with nothing but curl: create an upload, then ask the server where
# it stands and send the rest, until it has every byte. Run it again after
# any interruption (a dropped link, a reboot of either side): the upload URL
# is kept in FILE.tus-url, and the server says where to continue.
#
#   tus_curl.sh FILE http://host:8080/incoming/ [curl options, e.g. -u me:secret]
#
# The same steps by hand:
#   curl -i -X POST http://host:8080/incoming/ -H 'Tus-Resumable: 1.0.0' \
#        -H "Upload-Length: $(stat -c %s big.iso)" \
#        -H "Upload-Metadata: filename $(printf %s big.iso | base64)"
#   → Location: /incoming/?upload=<id>
#   curl -I 'http://host:8080/incoming/?upload=<id>' -H 'Tus-Resumable: 1.0.0'
#   → Upload-Offset: <offset>
#   tail -c +$((offset + 1)) big.iso | curl -X PATCH \
#        'http://host:8080/incoming/?upload=<id>' -H 'Tus-Resumable: 1.0.0' \
#        -H 'Content-Type: application/offset+octet-stream' \
#        -H "Upload-Offset: $offset" --data-binary @-
set -eu
file=$1 folder=$2
shift 2
size=$(stat -c %s "$file")
origin=$(printf %s "$folder" | sed -E 's#^(https?://[^/]+).*#\1#')
state="$file.tus-url"
field() { tr -d '\r' | sed -n "s/^$1: //Ip"; }

if [ ! -s "$state" ]; then
  name=$(basename "$file" | tr -d '\n' | base64 | tr -d '\n')
  curl -sS -f -o /dev/null -D - -X POST "$folder" "$@" \
    -H 'Tus-Resumable: 1.0.0' -H "Upload-Length: $size" \
    -H "Upload-Metadata: filename $name" | field location > "$state"
fi
url=$origin$(cat "$state")

# Bounded: a stuck upload ends with an error instead of looping forever.
for round in $(seq 1 ${TUS_ROUNDS:-100}); do
  offset=$(curl -sS -f -I "$url" "$@" -H 'Tus-Resumable: 1.0.0' | field upload-offset)
  echo "round $round: the server has $offset of $size bytes"
  if [ "$offset" = "$size" ]; then
    rm -f "$state"
    exit 0
  fi
  tail -c +$((offset + 1)) "$file" | curl -sS -o /dev/null -X PATCH "$url" "$@" \
    ${TUS_PATCH_OPTIONS:-} \
    -H 'Tus-Resumable: 1.0.0' -H 'Content-Type: application/offset+octet-stream' \
    -H "Upload-Offset: $offset" --data-binary @- || echo "round $round: interrupted"
done
echo "gave up after $round rounds" >&2
exit 1
