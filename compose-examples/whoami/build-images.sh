#!/bin/sh
# Import the example's backend image from the static busybox (no registry involved):
# httpd serving /www, with /cgi-bin/who printing the replica's hostname.
set -eu
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
