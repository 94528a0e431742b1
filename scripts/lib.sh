# Shared by scripts/*: apt installs, interpreters, venvs, quiet pip.

install_apt_packages() {  # install_apt_packages LISTFILE: the missing ones, in one apt-get run
  local need=() pkg
  while read -r pkg _; do
    [ -z "$pkg" ] || [[ "$pkg" == \#* ]] && continue
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done < "$1"
  if [ ${#need[@]} -gt 0 ]; then
    echo "== apt-get install ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
  fi
}

pyenv_python() {  # pyenv_python 3.13: path of pyenv's newest 3.13.x, or nothing
  local d
  d=$(ls -d "$HOME"/.pyenv/versions/"$1".* 2>/dev/null | sort -V | tail -1)
  [ -n "$d" ] && echo "$d/bin/python$1"
}

venv_for() {  # venv_for INTERPRETER: the checkout's venv for it (.venv-python3, .venv-pypy3, .venv-python3.13)
  echo "${ROOT:-$PWD}/.venv-$(basename "$1")"
}

make_venv() {  # make_venv INTERPRETER DIR
  [ -x "$2/bin/python" ] || "$1" -m venv "$2"
}

pipq() {  # pipq VENV ARGS...: pip without this machine's index-config noise, bounded (PIPQ_TIMEOUT s)
  local venv=$1
  shift
  timeout "${PIPQ_TIMEOUT:-900}" "$venv/bin/python" -m pip "$@" 2>&1 | { grep -v "is ignored: it is neither" || true; }
  return "${PIPESTATUS[0]}"
}
