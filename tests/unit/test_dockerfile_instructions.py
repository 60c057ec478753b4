"""Typed instructions, stages, BuildKit's error wording, and per-step variable expansion."""

from __future__ import annotations

from pathlib import Path

import pytest

from sampan.build import instructions as ins
from sampan.build.dockerfile import parse_dockerfile
from sampan.build.expansion import expand, resolve_meta_args, stage_base, stage_platform
from sampan.build.runmount import parse_mount
from sampan.errors import DockerfileParseError, InvalidArgument

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "dockerfiles"


def steps(body: str) -> list[ins.Instruction]:
    return parse_dockerfile("FROM busybox\n" + body).stages[0].instructions


def one(body: str) -> ins.Instruction:
    (step,) = steps(body)
    return step


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.Dockerfile")), ids=lambda p: p.stem)
def test_corpus_parses_to_stages(path: Path) -> None:
    df = parse_dockerfile(path.read_bytes())
    assert df.stages


def test_corpus_covers_every_instruction() -> None:
    seen: set[str] = set()
    for path in CORPUS.glob("*.Dockerfile"):
        df = parse_dockerfile(path.read_bytes())
        seen.update(step.name for stage in df.stages for step in stage.instructions)
        if df.stages:
            seen.add("FROM")
    assert seen == {
        "ADD",
        "ARG",
        "CMD",
        "COPY",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "FROM",
        "HEALTHCHECK",
        "LABEL",
        "MAINTAINER",
        "ONBUILD",
        "RUN",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    }


def test_stages_and_meta_args() -> None:
    df = parse_dockerfile(
        "ARG BASE=busybox V\nFROM --platform=linux/amd64 $BASE AS Build\nRUN x\n"
        "FROM build\nFROM scratch AS out\n"
    )
    assert df.meta_args == [ins.ArgDef("BASE", "busybox"), ins.ArgDef("V")]
    first, second, third = df.stages
    assert (first.base, first.name, first.platform, first.index) == (
        "$BASE",
        "build",
        "linux/amd64",
        0,
    )
    assert [s.name for s in first.instructions] == ["RUN"]
    assert (second.base, second.name, third.name) == ("build", "", "out")
    assert df.stage("BUILD") is first and df.stage("2") is third
    with pytest.raises(InvalidArgument, match='target stage "nope" could not be found'):
        df.stage("nope")
    assert stage_base(first, resolve_meta_args(df.meta_args, {}), df.escape) == "busybox"


def test_duplicate_stage_name_warns_and_last_wins() -> None:
    df = parse_dockerfile("FROM a AS x\nFROM b AS x\n")
    assert df.stage("x").base == "b"
    assert 'Duplicate stage name "x", stage names should be unique' in df.warnings


def test_blank_base_name() -> None:
    df = parse_dockerfile("ARG B\nFROM ${B}\n")
    with pytest.raises(DockerfileParseError, match=r"line 2: base name \(\$\{B\}\) should not"):
        stage_base(df.stages[0], {}, df.escape)


def test_resolve_meta_args() -> None:
    metas = [ins.ArgDef("A", "1"), ins.ArgDef("B", "${A}2"), ins.ArgDef("C"), ins.ArgDef("D")]
    assert resolve_meta_args(metas, {"D": "d"}) == {"A": "1", "B": "12", "D": "d"}
    assert resolve_meta_args(metas, {"A": "x"})["B"] == "x2"


def test_run_forms_and_flags() -> None:
    shell, exe, mounted = steps(
        'RUN echo $HOME\nRUN ["ls", "-l"]\n'
        "RUN --mount=type=cache,target=/c,id=x --network=none --security=insecure make\n"
    )
    assert isinstance(shell, ins.Run) and isinstance(exe, ins.Run)
    assert (shell.command, shell.prepend_shell) == (["echo $HOME"], True)
    assert (exe.command, exe.prepend_shell) == (["ls", "-l"], False)
    assert isinstance(mounted, ins.Run)
    assert (mounted.network, mounted.security) == ("none", "insecure")
    (m,) = mounted.mounts
    assert (m.type, m.target, m.cache_id, m.readonly) == ("cache", "/c", "x", False)
    assert mounted.flags_used == ["mount", "network", "security"]


def test_run_heredoc_files() -> None:
    run = one("RUN <<-EOF bash\n\techo hi\nEOF\n")
    assert isinstance(run, ins.Run)
    assert run.files == [ins.InlineFile("EOF", "\techo hi\n", chomp=True)]


def test_metadata_instructions() -> None:
    cmd, ep, env, label, maint, expose, vol, user, wd, sig, shell = steps(
        'CMD ["a"]\nENTRYPOINT x y\nENV A 1 B 2\nLABEL k=v "q"="w x"\nMAINTAINER Me <m@x>\n'
        'EXPOSE 8080/udp 80\nVOLUME ["/v"]\nUSER 1:2\nWORKDIR /w\nSTOPSIGNAL SIGKILL\n'
        'SHELL ["/bin/bash", "-c"]\n'
    )
    assert isinstance(cmd, ins.Cmd) and cmd.command == ["a"] and not cmd.prepend_shell
    assert isinstance(ep, ins.Entrypoint) and ep.command == ["x y"]
    assert isinstance(env, ins.Env) and env.env == [ins.KeyValue("A", "1 B 2", True)]
    assert isinstance(label, ins.Label)
    assert label.labels == [ins.KeyValue("k", "v"), ins.KeyValue('"q"', '"w x"')]
    assert isinstance(maint, ins.Maintainer) and maint.maintainer == "Me <m@x>"
    assert isinstance(expose, ins.Expose) and expose.ports == ["80", "8080/udp"]
    assert isinstance(vol, ins.Volume) and vol.volumes == ["/v"]
    assert isinstance(user, ins.User) and user.user == "1:2"
    assert isinstance(wd, ins.Workdir) and wd.path == "/w"
    assert isinstance(sig, ins.StopSignal) and sig.signal == "SIGKILL"
    assert isinstance(shell, ins.Shell) and shell.shell == ["/bin/bash", "-c"]
    assert (env.line, env.original) == (4, "ENV A 1 B 2")


def test_copy_and_add() -> None:
    copy, add = steps(
        "COPY --from=build --chown=1:1 --chmod=644 --link --parents --exclude=*.md "
        "--exclude=x a <<EOF /dst/\nbody\nEOF\n"
        "ADD --checksum=sha256:abc --keep-git-dir --unpack=false http://x/y.tgz /\n"
    )
    assert isinstance(copy, ins.Copy)
    assert (copy.sources, copy.dest, copy.from_) == (["a"], "/dst/", "build")
    assert (copy.chown, copy.chmod, copy.link, copy.parents) == ("1:1", "644", True, True)
    assert copy.excludes == ["*.md", "x"]
    assert copy.contents == [ins.InlineFile("EOF", "body\n")]
    assert isinstance(add, ins.Add)
    assert (add.checksum, add.keep_git_dir, add.unpack) == ("sha256:abc", True, False)


def test_healthcheck() -> None:
    hc, none = steps(
        "HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=1s --start-interval=2s "
        "--retries=4 CMD curl -f x\nHEALTHCHECK NONE\n"
    )
    assert isinstance(hc, ins.Healthcheck) and isinstance(none, ins.Healthcheck)
    assert hc.test == ["CMD-SHELL", "curl -f x"]
    assert (hc.interval, hc.timeout, hc.start_period, hc.start_interval, hc.retries) == (
        90 * 10**9,
        5 * 10**8,
        10**9,
        2 * 10**9,
        4,
    )
    assert none.test == ["NONE"]
    exec_form = one('HEALTHCHECK CMD ["true"]')
    assert isinstance(exec_form, ins.Healthcheck) and exec_form.test == ["CMD", "true"]


def test_onbuild_and_arg() -> None:
    onbuild, arg = steps("ONBUILD  RUN echo hi\nARG A B=2 C=\n")
    assert isinstance(onbuild, ins.Onbuild) and onbuild.expression == "RUN echo hi"
    assert isinstance(arg, ins.Arg)
    assert arg.args == [ins.ArgDef("A"), ins.ArgDef("B", "2"), ins.ArgDef("C", "")]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("RUNN x", "line 2: unknown instruction: RUNN"),
        ("ENV", "line 2: ENV requires at least one argument"),
        ("LABEL", "LABEL requires at least one argument"),
        ("EXPOSE", "EXPOSE requires at least one argument"),
        ("VOLUME", "VOLUME requires at least one argument"),
        ("ONBUILD", "ONBUILD requires at least one argument"),
        ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
        ("ARG", "ARG requires at least one argument"),
        ("USER", "USER requires exactly one argument"),
        ("WORKDIR", "WORKDIR requires exactly one argument"),
        ("STOPSIGNAL", "STOPSIGNAL requires exactly one argument"),
        ("MAINTAINER", "MAINTAINER requires exactly one argument"),
        (
            "COPY a",
            "COPY requires at least two arguments, but only one was provided. "
            "Destination could not be determined",
        ),
        ("ADD a", "ADD requires at least two arguments"),
        ("COPY a <<EOF\nx\nEOF", "COPY cannot accept a heredoc as a destination"),
        ("ENV a=b c", 'Syntax error - can\'t find = in "c". Must be of the form: name=value'),
        ("ENV a", "ENV must have two arguments"),
        ("ENV =x", "ENV names can not be blank"),
        ("ARG =x", "ARG names can not be blank"),
        ("SHELL /bin/sh -c", "SHELL requires the arguments to be in JSON form"),
        ("SHELL []", "SHELL requires at least one argument"),
        ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
        ("ONBUILD FROM x", "FROM isn't allowed as an ONBUILD trigger"),
        ("ONBUILD maintainer x", "MAINTAINER isn't allowed as an ONBUILD trigger"),
        ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
        ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
        ("HEALTHCHECK TEST x", 'Unknown type "TEST" in HEALTHCHECK (try CMD)'),
        ("HEALTHCHECK --interval=10ns CMD x", 'Interval "interval" cannot be less than 1ms'),
        ("HEALTHCHECK --timeout=x CMD x", 'time: invalid duration "x"'),
        ("HEALTHCHECK --retries=-1 CMD x", "--retries cannot be negative (-1)"),
        ("HEALTHCHECK --retries CMD x", "missing a value on flag: --retries"),
        ("COPY --nope a b", "unknown flag: --nope"),
        ("COPY --from=a --from=b a b", "duplicate flag specified: --from"),
        ("COPY --link=maybe a b", "expecting boolean value for flag --link, not: maybe"),
        ("COPY --link= a b", "missing a value on flag: --link"),
        ("WORKDIR --x /w", "unknown flag: --x"),
        ("RUN --network=bridge x", 'invalid network mode "bridge"'),
        ("RUN --security=root x", 'security "root" is not valid'),
        ("RUN --mount=type=nfs x", 'unsupported mount type "nfs"'),
        ("RUN --mount=type=bind,mode=0700 x", 'mode not allowed for "bind" type mounts'),
        ("RUN --mount=type=secret x", "invalid secret mount. one of source, target required"),
        ("RUN --mount=type=bind,size=1m x", "unexpected key 'size' for mount type 'bind'"),
        ("RUN --mount=type=cache,sharing=all x", 'unsupported sharing value "all"'),
        ("RUN --mount=type=cache,bogus=1 x", "unexpected key 'bogus' in 'bogus=1'"),
        ("RUN --mount=type=cache,readonly=maybe x", "invalid value for readonly: maybe"),
        ("RUN --mount=target x", "invalid field 'target' must be a key=value pair"),
        ('VOLUME [""]', "VOLUME specified can not be an empty string"),
    ],
)
def test_errors_use_buildkit_wording(body: str, message: str) -> None:
    with pytest.raises(DockerfileParseError) as info:
        parse_dockerfile("FROM busybox\n" + body + "\n")
    assert str(info.value).startswith("dockerfile parse error on line ")
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("RUN x\n", "line 1: no build stage in current context"),
        ("FROM a b\n", "FROM requires either one or three arguments"),
        ("FROM a AS 1st\n", 'invalid name for build stage: "1st", name can\'t start with a number'),
        ("FROM --platfrm=x a\n", "unknown flag: --platfrm"),
    ],
)
def test_stage_errors(text: str, message: str) -> None:
    with pytest.raises(DockerfileParseError, match=None) as info:
        parse_dockerfile(text)
    assert message in str(info.value)


ENV = {"A": "1", "USER": "app", "PORTS": "80 443", "E": ""}


def test_expand_follows_buildkit_rules() -> None:
    (env, label, copy, wd, user, vol, sig, expose, arg, cmd, run, heredoc_q) = steps(
        "ENV X=$A Y=${E:-d}\nLABEL l=$A\n"
        "COPY --chown=$USER --from=stage src$A <<EOF /dst$A\n$A\nEOF\n"
        "WORKDIR /w/$A\nUSER $USER\nVOLUME /v$A\nSTOPSIGNAL SIG$A\nEXPOSE $PORTS\n"
        "ARG B=$A\nCMD echo $A\nRUN --mount=type=cache,target=/c$A echo $A\n"
        "COPY <<'EOF' /q\n$A\nEOF\n"
    )
    assert isinstance(env, ins.Env)
    assert expand(env, ENV).env == [ins.KeyValue("X", "1"), ins.KeyValue("Y", "d")]
    assert isinstance(label, ins.Label) and expand(label, ENV).labels[0].value == "1"
    assert isinstance(copy, ins.Copy)
    c = expand(copy, ENV)
    assert (c.chown, c.from_, c.sources, c.dest) == ("app", "stage", ["src1"], "/dst1")
    assert c.contents[0].data == "1\n"
    assert isinstance(heredoc_q, ins.Copy) and expand(heredoc_q, ENV).contents[0].data == "$A\n"
    assert isinstance(wd, ins.Workdir) and expand(wd, ENV).path == "/w/1"
    assert isinstance(user, ins.User) and expand(user, ENV).user == "app"
    assert isinstance(vol, ins.Volume) and expand(vol, ENV).volumes == ["/v1"]
    assert isinstance(sig, ins.StopSignal) and expand(sig, ENV).signal == "SIG1"
    assert isinstance(expose, ins.Expose) and expand(expose, ENV).ports == ["80", "443"]
    assert isinstance(arg, ins.Arg) and expand(arg, ENV).args == [ins.ArgDef("B", "1")]
    assert expand(cmd, ENV) is cmd  # CMD, ENTRYPOINT, RUN's command: the shell expands
    assert isinstance(run, ins.Run)
    expanded = expand(run, ENV)
    assert expanded.command == ["echo $A"] and expanded.mounts[0].target == "/c1"
    assert copy.sources == ["src$A"]  # the parse itself is never modified


def test_mount_with_variable_is_checked_when_expanded() -> None:
    run = one("RUN --mount=type=$T,target=/x true")
    assert isinstance(run, ins.Run)
    assert expand(run, {"T": "tmpfs"}).mounts[0].type == "tmpfs"
    with pytest.raises(InvalidArgument, match="unsupported mount type"):
        expand(run, {"T": "nfs"})


def test_backtick_escape_in_expansion() -> None:
    df = parse_dockerfile("# escape=`\nFROM a\nENV P=C:\\dir`$A\n")
    (env,) = df.stages[0].instructions
    assert isinstance(env, ins.Env)
    assert expand(env, ENV, df.escape).env == [ins.KeyValue("P", "C:\\dir$A")]


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("1s", 10**9),
        ("1.5h", 5400 * 10**9),
        ("1m30s", 90 * 10**9),
        ("250us", 250000),
        ("-2ms", -2 * 10**6),
        ("1h2m3s4ms", 3723004 * 10**6),
    ],
)
def test_parse_duration(text: str, ns: int) -> None:
    assert ins.parse_duration(text) == ns


@pytest.mark.parametrize("text", ["", "1", "s", "1x", "1..s"])
def test_parse_duration_errors(text: str) -> None:
    with pytest.raises(InvalidArgument, match="time: "):
        ins.parse_duration(text)


def test_mount_defaults() -> None:
    assert parse_mount("target=/x").readonly is True
    assert parse_mount("type=tmpfs,target=/t,size=64m").size_limit == 64 << 20
    secret = parse_mount("type=secret,id=tok,required,mode=0400,uid=1")
    assert (secret.required, secret.mode, secret.uid, secret.readonly) == (True, 0o400, 1, True)
    assert parse_mount("type=bind,rw,source=a,target=b").readonly is False


def test_exposed_ports() -> None:
    assert ins.exposed_ports(["80", "443/TCP", "53/udp", "8000-8002/sctp", "1.2.3.4:8080:81"]) == [
        "80/tcp",
        "443/tcp",
        "53/udp",
        "8000/sctp",
        "8001/sctp",
        "8002/sctp",
        "81/tcp",
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("/tcp", "no port specified: /tcp<empty>"),
        ("80/icmp", "invalid proto: icmp"),
        ("http", "invalid containerPort: http"),
        ("70000", "invalid containerPort: 70000"),
        ("9-8", "invalid containerPort: 9-8"),
        ("1.2.3.999:1:2", "invalid IP address: 1.2.3.999"),
        ("x:80", "invalid hostPort: x"),
        ("1-3:5-6", "invalid ranges specified for container and host Ports: 5-6 and 1-3"),
    ],
)
def test_exposed_ports_errors(spec: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        ins.exposed_ports([spec])
    assert str(info.value) == message


def test_stage_variables_follow_docker_scoping() -> None:
    from sampan.build.expansion import StageVariables

    df = parse_dockerfile(
        "ARG GLOBAL=g OTHER=o\nFROM busybox\nARG GLOBAL\nARG LOCAL=${GLOBAL}-l\n"
        "ENV LOCAL=env-wins A=1 B=$A\nARG FROMCLI NOTGIVEN\nENV A=2 C=$A\n"
    )
    metas = resolve_meta_args(df.meta_args, {"FROMCLI": "x", "http_proxy": "p"})
    scope = StageVariables(
        build_args={"FROMCLI": "cli", "http_proxy": "p", "STRAY": "s"},
        meta_values=metas,
        env={"PATH": "/bin"},
    )
    arg_global, arg_local, env, arg_cli, env2 = df.stages[0].instructions
    assert "GLOBAL" not in scope.visible()  # a meta ARG is not visible until declared
    assert isinstance(arg_global, ins.Arg) and isinstance(arg_local, ins.Arg)
    scope.declare(arg_global)
    scope.declare(arg_local)
    assert scope.visible()["LOCAL"] == "g-l"
    assert isinstance(env, ins.Env)
    scope.set_env(env)
    assert scope.visible()["LOCAL"] == "env-wins"
    assert scope.visible()["B"] == ""  # pairs see the values from before the step
    assert isinstance(arg_cli, ins.Arg)
    scope.declare(arg_cli)
    assert scope.visible()["FROMCLI"] == "cli" and "NOTGIVEN" not in scope.visible()
    run_env = scope.run_environment()
    assert run_env["http_proxy"] == "p" and run_env["PATH"] == "/bin"
    assert "OTHER" not in run_env
    assert scope.unused_build_args() == ["STRAY"]
    assert isinstance(env2, ins.Env)
    scope.set_env(env2)
    assert (scope.visible()["A"], scope.visible()["C"]) == ("2", "1")


def test_copy_from_refuses_variables() -> None:
    copy = one("COPY --from=${STAGE} /a /b")
    with pytest.raises(InvalidArgument, match="variable expansion is not supported for --from"):
        expand(copy, {"STAGE": "x"})


@pytest.mark.parametrize(
    ("body", "command", "executable"),
    [
        ("RUN echo plain", ["echo plain"], None),
        ('RUN ["a", "b"]', ["a", "b"], None),
        ("RUN <<EOF\necho one\nEOF", ["echo one\n"], None),
        ("RUN <<-EOF\n\techo tab\n\tEOF", ["echo tab\n"], None),
        (
            "RUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF",
            ["/dev/pipes/EOF"],
            "#!/usr/bin/env python3\nprint(1)\n",
        ),
        ("RUN cat <<A >/x && cat <<B\na\nA\nb\nB", ["cat <<A >/x && cat <<B\na\nA\nb\nB"], None),
        ("RUN <<EOF bash\nset -e\nEOF", ["<<EOF bash\nset -e\nEOF"], None),
    ],
)
def test_run_script(body: str, command: list[str], executable: str | None) -> None:
    run = one(body)
    assert isinstance(run, ins.Run)
    script = ins.run_script(run)
    assert script.command == command
    assert (script.executable.data if script.executable else None) == executable


def test_onbuild_trigger_round_trip() -> None:
    from sampan.build.dockerfile import parse_trigger

    onbuild = one("ONBUILD COPY <<EOF /greeting\nhello\nEOF")
    assert isinstance(onbuild, ins.Onbuild)
    trigger = parse_trigger(onbuild.expression, line=7)
    assert isinstance(trigger, ins.Copy)
    assert trigger.contents == [ins.InlineFile("EOF", "hello\n")]
    assert isinstance(parse_trigger("RUN echo hi"), ins.Run)
    with pytest.raises(DockerfileParseError, match="line 7: onbuild trigger should be a single"):
        parse_trigger("RUN a\nRUN b", line=7)
    with pytest.raises(DockerfileParseError, match="line 3: unknown instruction: RUNN"):
        parse_trigger("RUNN x", line=3)


def test_heredoc_body_expansion_keeps_quotes() -> None:
    copy = one("COPY <<EOF /f\necho \"$A\" '$A' \\$A\nEOF")
    assert isinstance(copy, ins.Copy)
    assert expand(copy, {"A": "1"}).contents[0].data == "echo \"1\" '1' $A\n"


def test_stage_platform() -> None:
    df = parse_dockerfile("ARG P=linux/arm64\nFROM --platform=$P a\nFROM b\n")
    metas = resolve_meta_args(df.meta_args, {})
    assert stage_platform(df.stages[0], metas) == "linux/arm64"
    assert stage_platform(df.stages[1], metas) == ""


def test_quotes_leave_keys_and_values_on_expansion() -> None:
    label, arg = steps('LABEL "com.example.vendor"="ACME Inc" plain=a\\ b\nARG A="x y"\n')
    assert isinstance(label, ins.Label) and isinstance(arg, ins.Arg)
    assert expand(label, {}).labels == [
        ins.KeyValue("com.example.vendor", "ACME Inc"),
        ins.KeyValue("plain", "a b"),
    ]
    assert expand(arg, {}).args == [ins.ArgDef("A", "x y")]
