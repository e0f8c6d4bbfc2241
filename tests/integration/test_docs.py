"""The man page and --help say the same thing, command by command."""
import os
import re
import subprocess

import pytest

from conftest import ROOT, help_commands, help_examples, help_formats, run_pyspyc

MAN = os.path.join(ROOT, "man", "pyspyc.1")
CLI_H = os.path.join(ROOT, "include", "pyspyc", "cli.h")
# Each command's options are listed in this section of the man page.
SECTIONS = {"record": "RECORD OPTIONS", "top": "TOP", "dump": "DUMP", "agent": "AGENT",
            "convert": "CONVERT"}


def commands():
    return help_commands()


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


def man_text(roff):
    """A line of the page as it reads: the escapes this page uses undone."""
    for esc, plain in (("\\-", "-"), ("\\&", ""), ("\\(dq", '"'), ("\\e", "\\")):
        roff = roff.replace(esc, plain)
    return roff


def test_output_formats_match_help():
    # Each format is an item ".It Cm NAME" of the OUTPUT FORMATS list.
    man = re.findall(r"^\.It Cm (\S+)", man_section("OUTPUT FORMATS"), re.M)
    assert man == help_formats(), "OUTPUT FORMATS lists %s; record --help -f lists %s" % (
        man, help_formats())


def test_exit_statuses_match_cli_h():
    enum = open(CLI_H).read().split("Exit statuses", 1)[1].split("};", 1)[0]
    codes = {int(v): k for k, v in re.findall(r"\b(EXIT_\w+)\s*=\s*(\d+)", enum)}
    assert codes, "no exit statuses in cli.h"
    man = [int(c) for c in re.findall(r"^\.It (\d+)$", man_section("EXIT STATUS"), re.M)]
    assert man == sorted(codes), "EXIT STATUS lists %s; cli.h has %s" % (man, sorted(codes))


@pytest.mark.parametrize("cmd", [""] + sorted(SECTIONS))
def test_help_examples_in_man(cmd):
    args = [cmd] if cmd else []
    if cmd and cmd not in commands():
        pytest.skip("no %s command in this build" % cmd)
    examples = help_examples(*args)
    assert examples, "pyspyc %s --help has no examples" % cmd
    man = {man_text(line[len(".Dl "):]).strip()
           for line in man_section("EXAMPLES").splitlines() if line.startswith(".Dl ")}
    missing = [e for e in examples if e not in man]
    assert not missing, "examples of pyspyc %s --help not in the man page's EXAMPLES: %s" % (
        cmd, missing)
