"""make install / make uninstall (with the agent's systemd unit and
configuration), and the bash completion script they install, run in a real
bash against the binary's own --help."""
import os
import re
import shutil
import stat
import subprocess
import sys

import pytest

from conftest import PYSPYC, ROOT, help_commands, help_formats, help_option_names, why

COMPLETION = os.path.join(ROOT, "scripts", "pyspyc.bash-completion")
INSTALLED_COMPLETION = "usr/share/bash-completion/completions/pyspyc"
UNIT_IN = os.path.join(ROOT, "dist", "pyspyc-agent.service.in")
INSTALLED_UNIT = "usr/lib/systemd/system/pyspyc-agent.service"
INSTALLED_CONF = "etc/pyspyc/agent.conf"
# Installed path (under DESTDIR) -> the file it comes from and its mode.
INSTALLED = {
    "usr/bin/pyspyc": (os.path.join(ROOT, "pyspyc"), 0o755),
    "usr/share/man/man1/pyspyc.1": (os.path.join(ROOT, "man", "pyspyc.1"), 0o644),
    INSTALLED_COMPLETION: (COMPLETION, 0o644),
    INSTALLED_CONF: (os.path.join(ROOT, "dist", "agent.conf"), 0o644),
}


def make(target, destdir, prefix="/usr"):
    # A make of its own: under `make test SAN=1` the outer make's variables
    # (in MAKEFLAGS, SAN, and BUILD=build-san that tests/run.sh is given)
    # would install the sanitizer build, or link its objects without it.
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "SAN", "BUILD")}
    # A strict umask: the modes must come from the Makefile, not from it.
    return subprocess.run(["make", "--no-print-directory", "-C", ROOT, target,
                           "DESTDIR=" + str(destdir), "PREFIX=" + str(prefix), "SAN="],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=600, env=env,
                          preexec_fn=lambda: os.umask(0o077))


def tree(root):
    """{relative path: lstat} of everything under root."""
    found = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            found[os.path.relpath(p, root)] = os.lstat(p)
    return found


def render_man(path):
    """The page as every renderer on the machine formats it: [(renderer, text)]."""
    out = []
    if shutil.which("man"):
        r = subprocess.run(["man", "-l", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=60,
                           env=dict(os.environ, MANPAGER="cat", PAGER="cat", MANWIDTH="80",
                                    MAN_KEEP_FORMATTING=""))
        assert r.returncode == 0 and not r.stderr.strip(), r.stderr
        out.append(("man", r.stdout))
    if shutil.which("mandoc"):
        r = subprocess.run(["mandoc", "-T", "ascii", path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
        assert r.returncode == 0 and not r.stderr.strip(), r.stderr
        out.append(("mandoc", r.stdout))
    # Bold and underline are overstrikes: "N\bNA\bA" is a bold "NA".
    return [(n, re.sub(".\b", "", t)) for n, t in out]


def unit_lines(path):
    """The unit's settings, comments and blank lines left out."""
    with open(path) as f:
        return [l.strip() for l in f if l.strip() and not l.startswith(("#", ";"))]


def test_install_and_uninstall(tmp_path):
    dest = tmp_path / "dest"
    r = make("install", dest)
    assert r.returncode == 0, r.stdout
    files = {p: s for p, s in tree(str(dest)).items() if not stat.S_ISDIR(s.st_mode)}
    assert sorted(files) == sorted(list(INSTALLED) + [INSTALLED_UNIT]), r.stdout
    for rel, (src, mode) in INSTALLED.items():
        st = files[rel]
        assert stat.S_ISREG(st.st_mode), rel
        assert stat.S_IMODE(st.st_mode) == mode, "%s: mode %o" % (rel, stat.S_IMODE(st.st_mode))
        with open(src, "rb") as a, open(os.path.join(str(dest), rel), "rb") as b:
            assert a.read() == b.read(), "%s differs from %s" % (rel, src)
    for rel, st in tree(str(dest)).items():
        if stat.S_ISDIR(st.st_mode):
            assert stat.S_IMODE(st.st_mode) == 0o755, "%s: mode %o" % (
                rel, stat.S_IMODE(st.st_mode))
    assert stat.S_ISDIR(os.stat(str(dest / (INSTALLED_CONF + ".d"))).st_mode)

    # The unit: the template with the installed paths in it, nothing left
    # to substitute, and its ExecStart runs the installed binary on the
    # installed configuration.
    unit = str(dest / INSTALLED_UNIT)
    assert stat.S_IMODE(files[INSTALLED_UNIT].st_mode) == 0o644
    with open(UNIT_IN) as a, open(unit) as b:
        want = a.read().replace("@BINDIR@", "/usr/bin").replace("@SYSCONFDIR@", "/etc")
        assert b.read() == want
    assert not re.search(r"@[A-Z]+@", want), "a placeholder is left in the unit"
    assert [l for l in unit_lines(unit) if l.startswith("ExecStart=")] == [
        "ExecStart=/usr/bin/pyspyc agent --config /etc/pyspyc/agent.conf"]

    binary = str(dest / "usr/bin/pyspyc")
    v = subprocess.run([binary, "--version"], stdout=subprocess.PIPE, universal_newlines=True,
                       timeout=30)
    assert v.returncode == 0 and re.match(r"^pyspyc \d+\.\d+\.\d+\n$", v.stdout), v.stdout

    rendered = render_man(str(dest / "usr/share/man/man1/pyspyc.1"))
    assert rendered, "neither man nor mandoc is installed"
    for renderer, text in rendered:
        for heading in ("NAME", "SYNOPSIS", "OUTPUT FORMATS", "EXIT STATUS", "EXAMPLES"):
            assert "\n%s\n" % heading in text, "%s: no %s" % (renderer, heading)
        assert "pyspyc record" in text, renderer

    # The installed completion, with the installed binary; and bash-completion
    # finds it where it looks for a command's completion.
    assert complete(binary, "", script=str(dest / INSTALLED_COMPLETION)) == help_commands()
    assert loaded_by_bash_completion(str(dest / "usr/share")) == "complete -F _pyspyc pyspyc"

    # Everything goes but the configuration, which an admin may have edited.
    r = make("uninstall", dest)
    assert r.returncode == 0, r.stdout
    left = [p for p, s in tree(str(dest)).items() if not stat.S_ISDIR(s.st_mode)]
    assert left == [INSTALLED_CONF], left


def test_install_keeps_an_edited_configuration(tmp_path):
    dest = tmp_path / "dest"
    conf = dest / INSTALLED_CONF
    assert make("install", dest).returncode == 0
    edited = conf.read_text() + "\n[service web]\nmatch = gunicorn\n"
    conf.write_text(edited)
    os.chmod(str(conf), 0o600)
    # Installed again, and again after an uninstall: the edits stay, and so
    # does their mode; the unit is there each time.
    for target in ("install", "uninstall", "install"):
        r = make(target, dest)
        assert r.returncode == 0, r.stdout
        assert conf.read_text() == edited, "make %s changed the configuration" % target
        assert stat.S_IMODE(os.stat(str(conf)).st_mode) == 0o600, target
        assert (dest / INSTALLED_UNIT).exists() == (target == "install"), target
    assert "agent.conf exists: kept" in r.stdout, r.stdout


def test_installed_unit_verifies(tmp_path):
    """The unit as installed, checked by systemd: `systemd-analyze verify`
    needs its ExecStart binary at the path the unit names, so the install
    is into a prefix (no DESTDIR): the unit names tmp_path's binary and
    configuration, and is checked exactly as installed, Documentation= too
    (man finds the installed page)."""
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    prefix = tmp_path / "prefix"
    r = make("install", "", prefix=prefix)
    assert r.returncode == 0, r.stdout
    unit = str(prefix / "lib/systemd/system/pyspyc-agent.service")
    conf = str(prefix / "etc/pyspyc/agent.conf")
    assert [l for l in unit_lines(unit) if l.startswith("ExecStart=")] == [
        "ExecStart=%s agent --config %s" % (prefix / "bin/pyspyc", conf)]
    v = subprocess.run(["systemd-analyze", "verify", unit], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True, timeout=120,
                       env=dict(os.environ, MANPATH=str(prefix / "share/man")))
    # It exits 0 on some warnings: any output is a failure.
    assert v.returncode == 0 and v.stdout == "", v.stdout
    # The sample configuration as installed is one the agent takes.
    c = subprocess.run([str(prefix / "bin/pyspyc"), "agent", "--config", conf, "--check",
                        "--match", "no process has this command line"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=60)
    assert c.returncode == 0, c.stdout

BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"


def loaded_by_bash_completion(datadir):
    """How pyspyc completes once bash-completion (as an interactive shell
    has it) has loaded pyspyc's completion from datadir/bash-completion."""
    assert os.path.exists(BASH_COMPLETION), "bash-completion is not installed (make deps)"
    driver = r'''
source "$1" || exit 90
complete -p pyspyc 2>/dev/null && exit 91
export XDG_DATA_DIRS=$2 BASH_COMPLETION_USER_DIR=/nonexistent
# The loader bash-completion runs on a command's first completion.
if declare -F _comp_load >/dev/null; then _comp_load pyspyc; else __load_completion pyspyc; fi
complete -p pyspyc
'''
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", driver, "bash", BASH_COMPLETION,
                        datadir], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=60)
    assert r.returncode == 0, why(r.returncode, r.stderr)
    return r.stdout.strip()


# Source bash-completion when asked, then the script; find the function the
# script registered for pyspyc, and call it the way bash does: COMP_WORDS,
# COMP_CWORD (the last word), COMP_LINE, COMP_POINT; print how many
# candidates there are, then each one.
DRIVER = r'''
if [[ $1 ]]; then source "$1" || exit 89; fi
source "$2" || exit 90
spec=$(complete -p pyspyc) || exit 91
fn=${spec##*-F }
fn=${fn%% *}
shift 2
COMP_WORDS=("$@")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE="${COMP_WORDS[*]}"
COMP_POINT=${#COMP_LINE}
"$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%d\n' "${#COMPREPLY[@]}"
if ((${#COMPREPLY[@]})); then printf '%s\n' "${COMPREPLY[@]}"; fi
'''


def complete(*words, script=COMPLETION, cwd=None, bash_completion=False):
    """What the completion offers for words, the last being completed; with
    bash_completion, in a shell that has bash-completion loaded."""
    assert not bash_completion or os.path.exists(BASH_COMPLETION), \
        "bash-completion is not installed (make deps)"
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", DRIVER, "bash",
                        BASH_COMPLETION if bash_completion else "", script]
                       + list(words), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=60, cwd=cwd)
    assert r.returncode == 0 and not r.stderr, why(r.returncode, r.stderr)
    lines = r.stdout.split("\n")
    n = int(lines[0])
    assert len(lines) == n + 2 and lines[-1] == "", r.stdout
    return lines[1:n + 1]


def test_completes_subcommands():
    cmds = help_commands()
    assert cmds, "pyspyc --help lists no commands"
    assert complete(PYSPYC, "") == cmds
    for c in cmds:
        assert c in complete(PYSPYC, c[:2])
        assert all(w.startswith(c[:2]) for w in complete(PYSPYC, c[:2]))
    assert sorted(complete(PYSPYC, "-")) == sorted(help_option_names())


@pytest.mark.parametrize("bc", [False, True], ids=["plain", "bash-completion"])
@pytest.mark.parametrize("cmd", ["record", "top", "dump", "agent", "convert"])
def test_completes_every_option(cmd, bc):
    if cmd not in help_commands():
        pytest.skip("no %s command in this build" % cmd)
    names = help_option_names(cmd)
    assert sorted(complete(PYSPYC, cmd, "-", bash_completion=bc)) == sorted(names)
    assert sorted(complete(PYSPYC, cmd, "--", bash_completion=bc)) == sorted(
        n for n in names if n.startswith("--"))
    assert sorted(complete(PYSPYC, cmd, "--max", bash_completion=bc)) == sorted(
        n for n in names if n.startswith("--max"))
    # After an option that takes a number, nothing is offered.
    if "--max-depth" in names:
        assert complete(PYSPYC, cmd, "--max-depth", "", bash_completion=bc) == []


@pytest.mark.parametrize("bc", [False, True], ids=["plain", "bash-completion"])
def test_completes_convert_inputs(bc, tmp_path):
    """convert's inputs are files, wherever they are among the options."""
    for name in ("web.folded", "web-2.folded", "other.txt"):
        (tmp_path / name).write_text("a 1\n")
    for words in (["we"], ["-r", "100", "we"], ["a.folded", "-o", "x.svg", "we"]):
        got = complete(PYSPYC, "convert", *words, cwd=str(tmp_path), bash_completion=bc)
        assert sorted(got) == ["web-2.folded", "web.folded"], (words, got)
    assert "--rate" in complete(PYSPYC, "convert", "--r", bash_completion=bc)


@pytest.mark.parametrize("bc", [False, True], ids=["plain", "bash-completion"])
def test_completes_formats(bc):
    formats = help_formats()
    assert {"flamegraph", "raw"} <= set(formats), formats
    for words in (["-f", ""], ["--format", ""], ["--format", "="], ["-p", "1", "-f", ""]):
        assert complete(PYSPYC, "record", *words, bash_completion=bc) == formats, words
    # "--format=" split off by COMP_WORDBREAKS, and whole.
    assert complete(PYSPYC, "record", "--format", "=", "r", bash_completion=bc) == [
        f for f in formats if f.startswith("r")]
    assert complete(PYSPYC, "record", "--format=f", bash_completion=bc) == [
        "--format=" + f for f in formats if f.startswith("f")]


def test_completes_pids(one_python, target):
    # Started first, so that numeric order alone would put it first.
    other = subprocess.Popen(["sleep", "30"])
    t = target(one_python, "split.py", 30)
    try:
        assert other.pid < t.pid, "pids wrapped around"
        for cmd in ("record", "top", "dump"):
            pids = complete(PYSPYC, cmd, "-p", "")
            assert str(t.pid) in pids and str(other.pid) in pids, (cmd, pids)
            # Python processes first.
            assert pids.index(str(t.pid)) < pids.index(str(other.pid)), pids
            assert len(set(pids)) == len(pids), pids
        prefix = str(t.pid)[:-1]
        pids = complete(PYSPYC, "record", "--pid", prefix)
        assert str(t.pid) in pids and all(p.startswith(prefix) for p in pids), pids
        assert str(t.pid) in complete(PYSPYC, "record", "--pid", "=", prefix)
        assert "--pid=%d" % t.pid in complete(PYSPYC, "record", "--pid=" + prefix)
        assert all(p.isdigit() for p in complete(PYSPYC, "dump", "-p", ""))
    finally:
        other.kill()
        other.wait()


def test_completes_output_files(tmp_path):
    for n in ("profile.svg", "profile.folded", "other.txt"):
        (tmp_path / n).write_text("")
    assert sorted(complete(PYSPYC, "record", "-o", str(tmp_path / "prof"))) == [
        str(tmp_path / "profile.folded"), str(tmp_path / "profile.svg")]
    assert complete(PYSPYC, "record", "--output", "oth", cwd=str(tmp_path)) == ["other.txt"]


def test_completes_the_command(tmp_path):
    (tmp_path / "app.py").write_text("")
    exe = os.path.basename(sys.executable)
    assert exe in complete(PYSPYC, "record", "--", exe[:-1])
    assert exe in complete(PYSPYC, "top", "-r", "10", "--", exe[:-1])
    # A word that is not an option starts the command, as for the parser.
    assert exe in complete(PYSPYC, "record", "-o", "-", exe[:-1])
    # The command's own arguments: files (bash-completion, when loaded,
    # hands them to the command's completion).
    app = str(tmp_path / "ap")
    assert complete(PYSPYC, "record", "--", exe, app) == [app + "p.py"]
    assert complete(PYSPYC, "record", "-d", "5", exe, app) == [app + "p.py"]
    # After the command, its options are not pyspyc's.
    assert complete(PYSPYC, "record", "--", exe, "--ma") == []
    # With bash-completion loaded, the command's own completion takes over
    # (Python's offers its options and .py files).
    assert complete(PYSPYC, "record", "--", exe, app, bash_completion=True) == [app + "p.py"]
    assert "-m" in complete(PYSPYC, "record", "--", exe, "-", bash_completion=True)
    assert "-m" not in complete(PYSPYC, "record", "--", exe, "-")
    # dump takes no command: a stray word does not start one.
    assert "--pid" in complete(PYSPYC, "dump", "stray", "--")


def write_fake(path, record_help, log):
    """A stand-in pyspyc that logs its arguments to log and prints a help
    text: its only command, record, has record_help."""
    path.write_text("#!/bin/sh\necho \"$*\" >> %s\n"
                    "if [ \"$1\" = --help ]; then\n"
                    "  printf 'Usage: pyspyc <command>\\n\\nCommands:\\n  record   r\\n'\n"
                    "  exit 0\nfi\ncat <<'EOF'\n%sEOF\n" % (log, record_help))
    path.chmod(0o755)


def fake_record_help(option):
    return ("Usage: pyspyc record [OPTIONS] --pid PID\n\nOptions:\n"
            "  -p, --pid PID     the process\n"
            "      --%s    a flag\n\nExamples:\n  pyspyc record --pid 1\n" % option)


def test_completion_reads_wrapped_help(tmp_path):
    fake = tmp_path / "pyspyc"
    write_fake(fake, "Usage: pyspyc record [OPTIONS] (--pid PID | [--] COMMAND [ARGS...])\n\n"
               "Options:\n"
               "  -k, --kind KIND              what to do: one, two,\n"
               "                               three or four\n"
               "      --a-very-long-option-name-here N\n"
               "                               a number (default: 5, 6)\n"
               "      --flag                   a flag whose help goes on\n"
               "                               --over lines\n"
               "  -h, --help                   show this help and exit\n\n"
               "Examples:\n  pyspyc record --flag -- x\n", tmp_path / "log")
    assert sorted(complete(str(fake), "record", "-")) == sorted(
        ["-k", "--kind", "--a-very-long-option-name-here", "--flag", "-h", "--help"])
    assert complete(str(fake), "record", "-k", "") == ["one", "two", "three", "four"]
    assert complete(str(fake), "record", "--a-very-long-option-name-here", "") == []
    # The option took its value: "x" starts the command.
    exe = os.path.basename(sys.executable)
    assert exe in complete(str(fake), "record", "--a-very-long-option-name-here", "7",
                           exe[:-1])


def test_help_is_cached_until_the_binary_changes(tmp_path):
    log = tmp_path / "log"
    fake, new = tmp_path / "pyspyc", tmp_path / "new"
    write_fake(new, fake_record_help("beta-option"), log)
    write_fake(fake, fake_record_help("alpha"), log)
    driver = r'''
source "$1"
comp() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _pyspyc; echo "${COMPREPLY[*]}"; }
comp "$2" record --
comp "$2" record --
comp "$2" unknown --
cat "$3" > "$2"
comp "$2" record --
'''
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", driver, "bash", COMPLETION,
                        str(fake), str(new)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=60)
    assert r.returncode == 0 and not r.stderr, r.stderr
    assert r.stdout.splitlines() == ["--pid --alpha", "--pid --alpha", "",
                                     "--pid --beta-option"]
    # Each help read once per version of the binary; a command the program
    # does not list is never run.
    assert log.read_text().splitlines() == ["--help", "record --help",
                                            "--help", "record --help"]
