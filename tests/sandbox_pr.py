"""``make sandbox-pr PR="open|push N|close N|merge N"``: a developer's pull requests, against ``make sandbox``.

Acts on ``example/hello`` (the repository of the example origin in ``manifests/examples``) through
PyGithub, exactly the calls a person would make on github.com: ``open`` creates a branch from
``main``, commits a file on it (``repo.create_file``) and opens a pull request; ``push N`` commits a
change to that file on the PR's branch (``repo.update_file``, which needs the file's current sha);
``close N`` and ``merge N`` end it. Reads ``GITHUB_API_URL`` and ``GITHUB_TOKEN`` from the
environment, else from ``.sandbox/env``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from github import Auth, Github
from github.Repository import Repository

from controller_common import contract
from sandbox import EXAMPLE_REPOSITORY
from shared_data import REPO_ROOT

ORIGIN, NAMESPACE = "hello", "hello-example"  # manifests/examples


def read_env(path: Path) -> dict[str, str]:
    """``export KEY=VALUE`` lines, as ``make sandbox`` writes them."""
    pairs = (line.removeprefix("export ").split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return dict(pairs)


def connect(env_file: Path) -> Github:
    env = {**(read_env(env_file) if env_file.exists() else {}), **os.environ}
    if "GITHUB_API_URL" not in env:
        raise SystemExit(f"no GITHUB_API_URL and no {env_file}: start `make sandbox` first")
    return Github(base_url=env["GITHUB_API_URL"], auth=Auth.Token(env["GITHUB_TOKEN"]), seconds_between_writes=None)


def _changed_file(branch: str) -> str:
    return f"changes/{branch}.md"


def open_pull(repo: Repository, branch: str | None) -> int:
    if branch is None:
        taken = {b.name for b in repo.get_branches()}
        branch = next(f"feature-{n}" for n in range(1, 10_000) if f"feature-{n}" not in taken)
    repo.create_git_ref(f"refs/heads/{branch}", repo.get_branch("main").commit.sha)
    commit = repo.create_file(_changed_file(branch), f"start {branch}", f"# {branch}\n", branch=branch)["commit"]
    pull = repo.create_pull(title=f"Work on {branch}", head=branch, base="main")
    clone = f"{ORIGIN}-pr{pull.number}"
    print(f"opened PR #{pull.number} ({branch}, head {commit.sha[:7]}) in {repo.full_name}")
    print(f"  environment: Deployment and Service {clone} in namespace {NAMESPACE}")
    print(f"  watch:  .venv/bin/kubectl -n {NAMESPACE} get deploy,svc,virtualservices")
    header = contract.routing_header(ORIGIN, NAMESPACE)
    print(f"  route a request to it with the header  {header}: {contract.routing_value(clone, NAMESPACE)}")
    return 0


def push(repo: Repository, number: int) -> int:
    branch = repo.get_pull(number).head.ref
    path = _changed_file(branch)
    current = repo.get_contents(path, ref=branch)
    assert not isinstance(current, list)
    text = current.decoded_content.decode() + "one more change\n"
    commit = repo.update_file(path, f"change on {branch}", text, current.sha, branch=branch)["commit"]
    print(f"pushed {commit.sha[:7]} to PR #{number} ({branch}): the clone's image and head-sha annotation follow")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make sandbox-pr", description=__doc__)
    parser.add_argument("--env", type=Path, default=REPO_ROOT / ".sandbox" / "env", help="the sandbox's env file")
    commands = parser.add_subparsers(dest="command", required=True)
    opening = commands.add_parser("open", help="branch, commit and open a pull request")
    opening.add_argument("--branch", help="branch name (default: feature-<n>, the first free)")
    for name in ("push", "close", "merge"):
        commands.add_parser(name, help=f"{name} pull request N").add_argument("number", type=int)
    args = parser.parse_args(argv)
    github = connect(args.env)
    try:
        repo = github.get_repo(EXAMPLE_REPOSITORY)
        if args.command == "open":
            return open_pull(repo, args.branch)
        if args.command == "push":
            return push(repo, args.number)
        pull = repo.get_pull(args.number)
        if args.command == "close":
            pull.edit(state="closed")
        else:
            pull.merge()
        print(f"{args.command}d PR #{args.number}: its environment and route are removed")
        return 0
    finally:
        github.close()


if __name__ == "__main__":
    sys.exit(main())
