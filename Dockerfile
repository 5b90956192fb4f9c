# proxynow's container image (docs/container.md).
#
#   docker build -t proxynow .                                   # from PyPI, on python:3.11-slim
#   docker build --build-arg WHEELS=wheels -t proxynow .         # air-gapped: `pip wheel . -w wheels` first
#   docker build --build-arg BASE_IMAGE=my/debian-with-python3 ...  # any Debian with python3, python3-venv
#
# Nothing is fetched at build time when WHEELS is given: the base needs only `python3`
# and `python3-venv` (Debian's, or the official image's), and `libnghttp2-14` for the
# faster HTTP/2 codec (without it proxynow uses `h2`, and says so).
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ARG WHEELS=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY . /src
# --copies: the venv gets its own interpreter binary, so that the capability to bind
# ports below 1024 (set in the final stage) is given to proxynow alone, not to every
# python on the image; one binary (python3, which the scripts' #! lines name), the other
# names link to it.
RUN python3 -m venv --copies /opt/proxynow \
 && ln -sf python3 /opt/proxynow/bin/python && ln -sf python3 /opt/proxynow/bin/python3.11 \
 && if [ -n "$WHEELS" ]; then \
      /opt/proxynow/bin/pip install --no-index --find-links "/src/$WHEELS" proxynow; \
    else \
      /opt/proxynow/bin/pip install /src; \
    fi \
 && /opt/proxynow/bin/pip uninstall -y -q pip setuptools

FROM ${BASE_IMAGE}
ARG WHEELS=
COPY --from=build /opt/proxynow /opt/proxynow
# libnghttp2 (Debian's libnghttp2-14) for the HTTP/2 codec (docs/http2.md, "The codec"):
# installed from the base's apt sources when it is not there already, unless the build is
# air-gapped (WHEELS given: nothing is fetched), where a base without it serves HTTP/2 with
# the `h2` codec and proxynow says so in its log.
RUN if ! ls /usr/lib/*/libnghttp2.so.14 >/dev/null 2>&1 && [ -z "$WHEELS" ]; then \
      apt-get update -q && apt-get install -y -q --no-install-recommends libnghttp2-14 \
      && rm -rf /var/lib/apt/lists/*; \
    fi
# A non-root user that can still bind :80 and :443: the file capability
# cap_net_bind_service=+ep on the venv's interpreter (what `setcap` writes: a
# VFS_CAP_REVISION_2 record with the effective flag and bit 10, CAP_NET_BIND_SERVICE;
# capabilities(7)), written with Python so that the base needs no libcap2-bin.
RUN groupadd --system --gid 10001 proxynow \
 && useradd --system --uid 10001 --gid proxynow --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin proxynow \
 && mkdir -p /data && chown proxynow:proxynow /data && chmod 0700 /data \
 && python3 -c 'import os, struct, sys; os.setxattr(os.path.realpath(sys.argv[1]), "security.capability", struct.pack("<5I", 0x02000001, 1 << 10, 0, 0, 0))' \
      /opt/proxynow/bin/python3 \
 && rm -rf /var/cache/* /var/log/* /root/.cache
ENV PATH=/opt/proxynow/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PROXYNOW_PING=true \
    PROXYNOW_ENTRYPOINTS_TRAEFIK_ADDRESS=:8080
# /ping and the entrypoint it is on are set in the environment, not in CMD, so that both
# `proxynow run` with any command and the HEALTHCHECK's `proxynow healthcheck` see them.
USER proxynow
WORKDIR /data
VOLUME /data
EXPOSE 80 443 8080
# proxynow drains on SIGTERM (in-flight requests finish, /ping answers 503, exit 0).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["proxynow", "healthcheck"]
ENTRYPOINT ["proxynow"]
CMD ["--providers.docker", "--entryPoints.web.address=:80", \
     "--entryPoints.websecure.address=:443", "--api.insecure=true", "--api.dashboard=true"]
