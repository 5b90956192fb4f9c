#!/bin/sh
# Build the example's two images without a registry:
#  - proxynow:local from the repository's Dockerfile (on python:3.11-slim by default;
#    pass --build-arg BASE_IMAGE=... / WHEELS=... as docs/container.md says);
#  - proxynow-example-backend:local, a ~2 MB busybox httpd imported from the static busybox
#    (Debian's busybox-static), with /cgi-bin/who printing the container's hostname.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
docker build -t proxynow:local "$here/../.." "$@"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/www/cgi-bin" "$root/tmp" "$root/etc"
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
echo "hello from busybox" > "$root/www/index.html"
cat > "$root/www/cgi-bin/who" <<'CGI'
#!/bin/sh
printf "Content-Type: text/plain\r\n\r\n"
echo "hostname=$(hostname)"
echo "host=$HTTP_HOST"
CGI
chmod 755 "$root/www/cgi-bin/who"
tar -C "$root" -c . | docker import \
  -c 'CMD ["/bin/sh","-c","trap \"exit 0\" TERM INT; httpd -f -p ${PORT:-80} -h /www & wait"]' \
  -c 'EXPOSE 80' -c 'ENV PATH=/bin' - proxynow-example-backend:local
