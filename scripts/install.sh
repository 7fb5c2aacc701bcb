#!/usr/bin/env bash
# Installs corral as a systemd service, or upgrades it in place.
#
# Usage: sudo scripts/install.sh [--binary FILE] [--no-start] [--root DIR] [--prefix DIR]
#
#   --binary FILE  the corral binary to install (default: dist/corral-linux-ARCH
#                  as scripts/build makes it, else a corral beside this script)
#   --no-start     install and enable, but neither start nor restart corral
#   --root DIR     install into DIR as if it were / (a throwaway root, for a
#                  trial or a test): systemd is not asked to start anything
#   --prefix DIR   where bin/corral goes (default /usr/local)
#
# It puts in place, under ROOT (/ by default):
#   PREFIX/bin/corral                  the binary, replaced atomically
#   /var/lib/corral                    the data dir (mode 0700)
#   /etc/systemd/system/corral.service the unit (from scripts/corral.service), enabled
#   /etc/corral/corral.env             settings as CORRAL_* variables: made once,
#                                      never overwritten by an upgrade
# then, on a running systemd: daemon-reload, start (or restart, when corral
# was running: that is the upgrade; the Ollama containers keep running and
# are adopted), waits for corral to answer, prints the admin link and token
# and runs corral doctor. Running it again upgrades in place.
#
# Needs Docker Engine; on a GPU server also the NVIDIA driver and the
# NVIDIA Container Toolkit (see docs/operations.md).
set -euo pipefail

prog=scripts/install.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}
die() {
	echo "$prog: $*" >&2
	exit 1
}

binary= root=/ prefix=/usr/local start=1
while [ $# -gt 0 ]; do
	case $1 in
	--binary) binary=${2:?--binary needs a file}; shift 2 ;;
	--binary=*) binary=${1#*=}; shift ;;
	--root) root=${2:?--root needs a directory}; shift 2 ;;
	--root=*) root=${1#*=}; shift ;;
	--prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
	--prefix=*) prefix=${1#*=}; shift ;;
	--no-start) start=0; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "$prog: unknown argument $1 (see $prog --help)" >&2; exit 2 ;;
	esac
done

root=${root%/}
live=0 # installing into this system's own /
if [ -z "$root" ]; then
	live=1
	[ "$(id -u)" -eq 0 ] || die "run it as root (sudo $prog), or give --root DIR for a trial install"
else
	mkdir -p "$root" && root=$(cd "$root" && pwd)
fi

if [ -z "$binary" ]; then
	case $(uname -m) in
	x86_64) arch=amd64 ;;
	aarch64 | arm64) arch=arm64 ;;
	*) arch=$(uname -m) ;;
	esac
	for f in "$here/../dist/corral-linux-$arch" "$here/corral"; do
		if [ -f "$f" ]; then
			binary=$f
			break
		fi
	done
	[ -n "$binary" ] || die "no corral binary: run scripts/build first, or give --binary FILE"
fi
[ -f "$binary" ] && [ -x "$binary" ] || die "--binary $binary: not an executable file"
"$binary" version >/dev/null 2>&1 || die "--binary $binary does not run here (built for another architecture?)"
unit_src=$here/corral.service
[ -f "$unit_src" ] || die "$unit_src missing: run this script from corral's scripts/ folder"

bin_dir=$root$prefix/bin
dest=$bin_dir/corral
data_dir=$root/var/lib/corral
unit=$root/etc/systemd/system/corral.service
env_dir=$root/etc/corral
env_file=$env_dir/corral.env

# The binary: a new file moved over the old one, so a running corral keeps
# its own until it restarts.
old=
if [ -x "$dest" ]; then
	old=$("$dest" version 2>/dev/null | head -n 1 || true)
fi
new=$("$binary" version | head -n 1)
mkdir -p "$bin_dir"
if [ ! "$binary" -ef "$dest" ]; then
	install -m 0755 "$binary" "$dest.new"
	mv -f "$dest.new" "$dest"
fi
if [ -n "$old" ]; then
	echo "upgraded $dest: $old -> $new"
else
	echo "installed $dest: $new"
fi

install -d -m 0700 "$data_dir"
echo "data dir $data_dir"

if [ ! -f "$env_file" ]; then
	install -d -m 0755 "$env_dir"
	(umask 077 && cat >"$env_file" <<'EOF'
# corral's settings: any `corral serve` flag as CORRAL_<FLAG> (corral serve
# --help lists them). After a change: systemctl restart corral.
#CORRAL_DOMAIN=chat.example.com
#CORRAL_EMAIL=you@example.com
#CORRAL_CHAT_UI=open-webui
#CORRAL_ADMIN_ADDR=127.0.0.1:8090
#CORRAL_GPUS=all
EOF
	)
	echo "settings $env_file (new)"
else
	echo "settings $env_file (kept)"
fi

mkdir -p "$(dirname "$unit")"
sed "s|^ExecStart=/usr/local/bin/corral |ExecStart=$prefix/bin/corral |" "$unit_src" >"$unit.new"
chmod 0644 "$unit.new"
mv -f "$unit.new" "$unit"
echo "unit $unit"

# Enable: the wants link in multi-user.target.wants.
if [ "$live" = 1 ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload
	systemctl enable corral.service
elif command -v systemctl >/dev/null 2>&1 && systemctl --root="${root:-/}" enable corral.service >/dev/null 2>&1; then
	:
else
	mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
	ln -sf /etc/systemd/system/corral.service "$root/etc/systemd/system/multi-user.target.wants/corral.service"
fi
echo "enabled corral.service"

if [ "$live" = 0 ]; then
	echo "installed into $root: nothing started (--root)"
	exit 0
fi
if [ ! -d /run/systemd/system ]; then
	echo "systemd is not running here: start corral yourself with: CORRAL_DATA_DIR=/var/lib/corral $prefix/bin/corral serve"
	exit 0
fi
if [ "$start" = 0 ]; then
	if systemctl is-active --quiet corral.service; then
		echo "not restarted (--no-start): corral still runs the old binary until: systemctl restart corral"
	else
		echo "not started (--no-start): systemctl start corral"
	fi
	exit 0
fi

if systemctl is-active --quiet corral.service; then
	echo "restarting corral (the Ollama containers keep running and are adopted)"
	systemctl restart corral.service
else
	echo "starting corral"
	systemctl start corral.service
fi

# Wait for the daemon to answer on its control socket.
answered=0
for _ in $(seq 1 60); do
	if CORRAL_DATA_DIR=/var/lib/corral "$dest" status >/dev/null 2>&1; then
		answered=1
		break
	fi
	if ! systemctl is-active --quiet corral.service; then
		journalctl -u corral.service -n 20 --no-pager >&2 || true
		die "corral stopped: the lines above say why (journalctl -u corral shows more)"
	fi
	sleep 0.5
done

# The admin link from the settings, as corral serve reads them.
admin_addr=$(sed -n 's/^CORRAL_ADMIN_ADDR=//p' "$env_file" | tail -n 1 | tr -d "\"'")
admin_addr=${admin_addr:-127.0.0.1:8090}
domain=$(sed -n 's/^CORRAL_DOMAIN=//p' "$env_file" | tail -n 1 | tr -d "\"'" | cut -d, -f1)
port=${admin_addr##*:}
host=${admin_addr%:*}
case $host in "" | 0.0.0.0 | "[::]") host=localhost ;; esac
if [ -n "$domain" ]; then
	link="https://$domain:$port/"
else
	link="http://$host:$port/"
fi
token=$(CORRAL_DATA_DIR=/var/lib/corral "$dest" admin-token 2>/dev/null || echo "(none yet: sudo corral admin-token)")
# A one-time sign-in link from the running corral (it knows its own URL).
signin=$(CORRAL_DATA_DIR=/var/lib/corral "$dest" admin-link 2>/dev/null || echo "(sudo corral admin-link makes one once corral answers)")
state="corral is running."
if [ "$answered" = 0 ]; then
	state="corral started but did not answer within 30 s: systemctl status corral and journalctl -u corral say why."
fi
cat <<EOF

$state
  admin page  $link   (from another machine: ssh -L $port:127.0.0.1:$port THIS-HOST, then open http://127.0.0.1:$port/)
  sign in     $signin   (works once, for 15 minutes; sudo corral admin-link makes another)
  admin token $token   (sudo corral admin-token prints it again)
  API key     sudo corral keys create NAME
  logs        journalctl -u corral -f
  settings    $env_file, then systemctl restart corral

EOF
# corral doctor with the service's settings.
(
	set -a
	# shellcheck disable=SC1090
	. "$env_file"
	set +a
	CORRAL_DATA_DIR=/var/lib/corral "$dest" doctor
) || echo "corral doctor found problems: see the FAIL lines above"
