"""The man page and --help say the same thing."""
import os
import re
import subprocess

from conftest import ROOT, run_pyspyc

MAN = os.path.join(ROOT, "man", "pyspyc.1")


def help_options(cmd):
    r = run_pyspyc([cmd, "--help"])
    assert r.returncode == 0
    return set(re.findall(r"--([a-z][a-z-]+)", r.stdout.split("Examples:")[0]))


def man_options():
    text = open(MAN).read()
    return {m.replace("\\-", "-") for m in re.findall(r"Fl \\-((?:[a-z]|\\-)+)", text)}


def test_man_lists_every_record_option():
    missing = help_options("record") - man_options()
    assert not missing, "options in --help but not in the man page: %s" % sorted(missing)


def test_man_lists_every_dump_option():
    missing = help_options("dump") - man_options()
    assert not missing, "options in --help but not in the man page: %s" % sorted(missing)


def test_man_has_no_unknown_option():
    extra = man_options() - help_options("record") - help_options("dump") - {"version", "help"}
    assert not extra, "options in the man page but not in --help: %s" % sorted(extra)


def test_man_lint():
    r = subprocess.run(["mandoc", "-T", "lint", "-W", "warning", MAN],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert r.returncode == 0, r.stdout
