# Sourced by the test scripts: puts the tools virtualenv made by scripts/install-deps.sh on PATH.
# CNIT_TOOLS_DIR (default ~/.cache/cnit-tools) holds venv/ with kubernetes-validate and kubectl.
CNIT_TOOLS_DIR="${CNIT_TOOLS_DIR:-$HOME/.cache/cnit-tools}"
export CNIT_TOOLS_DIR
if [ -d "$CNIT_TOOLS_DIR/venv/bin" ] && [[ ":$PATH:" != *":$CNIT_TOOLS_DIR/venv/bin:"* ]]; then
  export PATH="$CNIT_TOOLS_DIR/venv/bin:$PATH"
fi

# have_kustomize: a kubectl with the built-in kustomize (`kubectl kustomize`) is on PATH.
have_kustomize() {
  command -v kubectl >/dev/null && kubectl kustomize --help >/dev/null 2>&1
}
