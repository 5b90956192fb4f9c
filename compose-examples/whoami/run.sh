#!/bin/sh
# Build the images, start proxynow and three replicas, show that all three answer, stop.
set -eu
cd "$(dirname "$0")"
export PROXYNOW_REPO="$(cd ../.. && pwd)"
export PYTHON_HOME="$(sed -n 's/^home = \(.*\)\/bin$/\1/p' "$PROXYNOW_REPO/.venv/pyvenv.cfg")"
./build-images.sh >/dev/null
docker-compose -p proxynow-example up -d --scale web=3
trap 'docker-compose -p proxynow-example down; docker rmi proxynow-example-backend:local >/dev/null' EXIT
for i in $(seq 1 100); do
  if curl -fs -H 'Host: app.localhost' http://127.0.0.1:8080/cgi-bin/who >/dev/null; then break; fi
  sleep 0.1
done
for i in 1 2 3 4 5 6; do
  curl -s -H 'Host: app.localhost' http://127.0.0.1:8080/cgi-bin/who | head -1
done
