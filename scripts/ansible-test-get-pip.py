"""Stand-in for pip's get-pip.py bootstrap script, for `ansible-test --venv`.

ansible-test bootstraps pip in each venv it makes by downloading get-pip.py from
ci-files.testing.ansible.com, which these machines cannot reach. It runs the script as
`python get_pip.py [pip options] pip==X [setuptools==Y] [--no-setuptools] [--no-wheel]`.
This stand-in gets the same result from what is reachable: the interpreter's own
ensurepip, then the requested versions from the package index.
scripts/test installs it into ansible-test's cache only where no real one is cached.
"""
import subprocess
import sys

# fleet-criu-get-pip-stand-in (marker: scripts/test replaces only files carrying it)
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", *args])
