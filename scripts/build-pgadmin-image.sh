#!/usr/bin/env bash
# Build a local stand-in for the official pgAdmin 4 image (dpage/pgadmin4) without any container
# registry: pgAdmin 4 from PyPI on a rootfs made of Debian bookworm's Python 3.11 .debs (no
# chroot, no debootstrap), with an entrypoint that keeps the official image's contract:
#   PGADMIN_DEFAULT_EMAIL / PGADMIN_DEFAULT_PASSWORD (or _FILE) create the login on first start,
#   PGADMIN_SERVER_JSON_FILE (default /pgadmin4/servers.json) is loaded for that user then,
#   PGADMIN_LISTEN_PORT (default 80), data in the volume /var/lib/pgadmin, server mode.
# Usage: build-pgadmin-image.sh [IMAGE_TAG ...]   (default tag: localhost/pgadmin4-local:latest)
# Needs a Python 3.11 with pip on the host ($PYTHON, default python3): the wheels it installs
# must match the image's interpreter (bookworm's python3.11).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="${WORK:-$HERE/pgadmin-imgbuild}"
PGADMIN_VERSION="${PGADMIN_VERSION:-9.18}"
PYTHON="${PYTHON:-python3}"
TAGS=("$@"); [ ${#TAGS[@]} -gt 0 ] || TAGS=(localhost/pgadmin4-local:latest)
: "${CONTAINERS_CONF:?export CONTAINERS_CONF (runc runtime + ulimits) first}"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || { echo "build-pgadmin-image.sh: $PYTHON is not Python 3.11 (set PYTHON)" >&2; exit 1; }

rm -rf "$WORK"; mkdir -p "$WORK/rootfs" "$WORK/debs" "$WORK/ctx"
R="$WORK/rootfs"

# 1. Python 3.11 userland from bookworm .debs (what python3.11 and its stdlib link against)
DEBS="libc6 libgcc-s1 gcc-12-base libstdc++6 zlib1g libbz2-1.0 liblzma5 libexpat1 libffi8
libssl3 libsqlite3-0 libuuid1 libcrypt1 libdb5.3 libgdbm6 libgdbm-compat4 libncursesw6
libtinfo6 libreadline8 readline-common libnsl2 libtirpc3 libtirpc-common libgssapi-krb5-2
libkrb5-3 libk5crypto3 libkrb5support0 libkeyutils1 libcom-err2 media-types
python3.11-minimal libpython3.11-minimal libpython3.11-stdlib busybox-static"
# shellcheck disable=SC2086
( cd "$WORK/debs" && apt-get download -q $DEBS >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get download -q $DEBS >/dev/null; } )
for d in "$WORK"/debs/*.deb; do dpkg-deb -x "$d" "$R"; done
rm -rf "$R"/usr/share/doc "$R"/usr/share/man "$R"/usr/share/locale "$R"/usr/share/lintian
mkdir -p "$R"/bin "$R"/tmp "$R"/etc "$R"/root "$R"/var/lib/pgadmin "$R"/var/log/pgadmin "$R"/pgadmin4
chmod 1777 "$R"/tmp
for a in $("$R"/bin/busybox --list); do [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"; done
ln -sf python3.11 "$R"/usr/bin/python3
printf 'root:x:0:0:root:/root:/bin/sh\npgadmin:x:5050:0:pgAdmin:/var/lib/pgadmin:/bin/sh\n' > "$R"/etc/passwd
printf 'root:x:0:\npgadmin:x:5050:\n' > "$R"/etc/group
printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$R"/etc/nsswitch.conf
printf '127.0.0.1 localhost\n::1 localhost\n' > "$R"/etc/hosts
# like the official image: owned by pgadmin, group root with the owner's rights (any uid in gid 0)
chown -R 5050:0 "$R"/var/lib/pgadmin "$R"/var/log/pgadmin "$R"/pgadmin4
chmod 0770 "$R"/var/lib/pgadmin "$R"/var/log/pgadmin

# 2. pgAdmin 4 and its dependencies (wheels built for this interpreter version; pip caches them)
L="$R/usr/lib/pgadmin4"
"$PYTHON" -m pip install -q --disable-pip-version-check --no-compile --target "$L" \
    "pgadmin4==$PGADMIN_VERSION" 2>&1 | grep -v "^WARNING: Location" >&2 || true
[ -f "$L/pgadmin4/pgAdmin4.py" ] || { echo "pip could not install pgadmin4" >&2; exit 1; }
rm -rf "$L"/bin "$L"/pgadmin4/docs
cat > "$L"/pgadmin4/config_distro.py <<'PY'
# The stand-in image's settings (the official image keeps its own here too).
import os
SERVER_MODE = True
DATA_DIR = '/var/lib/pgadmin'
LOG_FILE = '/dev/null'
DEFAULT_SERVER = '0.0.0.0'
DEFAULT_SERVER_PORT = int(os.environ.get('PGADMIN_LISTEN_PORT', '80'))
UPGRADE_CHECK_ENABLED = False
SHOW_GRAVATAR_IMAGE = False  # no calls out (the official image takes PGADMIN_CONFIG_*)
PY
mkdir -p "$R"/usr/local/bin
cat > "$R"/usr/local/bin/entrypoint.sh <<'ENTRYPOINT_EOF'
#!/bin/sh
# Stand-in for dpage/pgadmin4's /entrypoint.sh: first start creates the login and loads servers.
set -eu
cd /usr/lib/pgadmin4/pgadmin4
if [ ! -f /var/lib/pgadmin/pgadmin4.db ]; then
    if [ -n "${PGADMIN_DEFAULT_PASSWORD_FILE:-}" ]; then
        PGADMIN_DEFAULT_PASSWORD="$(cat "$PGADMIN_DEFAULT_PASSWORD_FILE")"
    fi
    if [ -z "${PGADMIN_DEFAULT_EMAIL:-}" ] || [ -z "${PGADMIN_DEFAULT_PASSWORD:-}" ]; then
        echo 'You need to define the PGADMIN_DEFAULT_EMAIL and PGADMIN_DEFAULT_PASSWORD or PGADMIN_DEFAULT_PASSWORD_FILE environment variables.' >&2
        exit 1
    fi
    PGADMIN_SETUP_EMAIL="$PGADMIN_DEFAULT_EMAIL" PGADMIN_SETUP_PASSWORD="$PGADMIN_DEFAULT_PASSWORD" \
        python3 setup.py setup-db
    servers="${PGADMIN_SERVER_JSON_FILE:-/pgadmin4/servers.json}"
    if [ -f "$servers" ]; then
        python3 setup.py load-servers "$servers" --user "$PGADMIN_DEFAULT_EMAIL"
    fi
fi
exec python3 pgAdmin4.py
ENTRYPOINT_EOF
chmod 0755 "$R"/usr/local/bin/entrypoint.sh

# 3. image (docker format keeps USER/HEALTHCHECK metadata as Docker has it)
tar -C "$R" --numeric-owner -cf "$WORK"/ctx/rootfs.tar .
cat > "$WORK"/ctx/Containerfile <<'CF'
FROM scratch
ADD rootfs.tar /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONPATH=/usr/lib/pgadmin4 PYTHONDONTWRITEBYTECODE=1 LANG=C.UTF-8
LABEL org.opencontainers.image.title="local dpage/pgadmin4 stand-in (pgadmin4 from PyPI)"
VOLUME /var/lib/pgadmin
EXPOSE 80
USER pgadmin
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
CF
first="${TAGS[0]}"
podman build -q --format docker --layers=false --network none -t "$first" -f "$WORK"/ctx/Containerfile "$WORK"/ctx >/dev/null
for t in "${TAGS[@]:1}"; do podman tag "$first" "$t"; done
podman image inspect --format '{{.Id}} {{.Size}}' "$first"
