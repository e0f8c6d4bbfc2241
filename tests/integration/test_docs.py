"""The man page and --help say the same thing, command by command."""
import os
import re
import subprocess

import pytest

from conftest import ROOT, run_pyspyc

MAN = os.path.join(ROOT, "man", "pyspyc.1")
# Each command's options are listed in this section of the man page.
SECTIONS = {"record": "RECORD OPTIONS", "top": "TOP", "dump": "DUMP"}


def commands():
    r = run_pyspyc(["--help"])
    assert r.returncode == 0
    block = r.stdout.split("Commands:")[1].split("Options:")[0]
    return [line.split()[0] for line in block.strip().splitlines()]


def help_options(cmd):
    r = run_pyspyc([cmd, "--help"])
    assert r.returncode == 0
    return set(re.findall(r"--([a-z][a-z-]+)", r.stdout.split("Examples:")[0]))


def man_section(title):
    text = open(MAN).read()
    m = re.search(r"^\.Sh %s\n(.*?)(?=^\.Sh )" % re.escape(title), text, re.S | re.M)
    assert m, "the man page has no section %s" % title
    return m.group(1)


def man_options(text):
    return {m.replace("\\-", "-") for m in re.findall(r"Fl \\-((?:[a-z]|\\-)+)", text)}


def test_every_command_has_a_section():
    for cmd in commands():
        assert cmd in SECTIONS, "command %s has no man page section" % cmd
        man_section(SECTIONS[cmd])


@pytest.mark.parametrize("cmd", sorted(SECTIONS))
def test_man_lists_every_option(cmd):
    if cmd not in commands():
        pytest.skip("no %s command in this build" % cmd)
    opts = man_options(man_section(SECTIONS[cmd]))
    missing = help_options(cmd) - opts
    assert not missing, "%s options in --help but not in the man page: %s" % (cmd, sorted(missing))
    extra = opts - help_options(cmd) - {"version", "help"}
    assert not extra, "%s options in the man page but not in --help: %s" % (cmd, sorted(extra))


def test_man_lint():
    r = subprocess.run(["mandoc", "-T", "lint", "-W", "warning", MAN],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert r.returncode == 0, r.stdout
