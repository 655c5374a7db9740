"""The state of the emulated GitHub and the operations that change it, under one lock.

Every operation here is what a person does on GitHub (create a repository, push a branch, open,
label, close or merge a pull request) and enforces GitHub's rules for it, raising ``ApiError``
with the real status and message. Operations that GitHub announces by webhook call ``emit`` with
an ``Event``; the server turns events into deliveries. Callers hold ``store.lock`` (re-entrant)
around a whole request, so a request sees and leaves a consistent state.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError, custom_validation, not_found, validation
from .model import Commit, Label, Pull, Repo, User, make_sha, now


@dataclass
class Event:
    """Something GitHub would announce by webhook; ``extra`` is merged into the payload."""

    name: str
    repo: Repo
    sender: User
    action: str | None = None
    pull: Pull | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Store:
    def __init__(self, emit: Callable[[Event], None] = lambda event: None) -> None:
        self.lock = threading.RLock()
        self.users: dict[str, User] = {}
        self.repos: dict[tuple[str, str], Repo] = {}
        self.emit = emit

    # -- accounts ----------------------------------------------------------------------------
    def user(self, login: str, *, type: str = "User") -> User:
        key = login.lower()
        if key not in self.users:
            self.users[key] = User(login=login, type=type)
        return self.users[key]

    def org(self, login: str, *, member: str | None = None) -> User:
        org = self.user(login, type="Organization")
        if org.type != "Organization":
            raise not_found()
        if member is not None:
            org.members.add(member)
        return org

    def org_for(self, login: str, member: User) -> User:
        """The organization ``login`` for ``member``: created on first use with them as member."""
        existing = self.users.get(login.lower())
        if existing is None:
            return self.org(login, member=member.login)
        if existing.type != "Organization":
            raise not_found()
        if member.login not in existing.members:
            raise ApiError(403, "You need admin access to the organization before adding a repository to it.")
        return existing

    # -- repositories ------------------------------------------------------------------------
    def create_repo(
        self, owner: User, name: str, *, creator: User, private: bool = False, description: str | None = None
    ) -> Repo:
        if not name or "/" in name:
            raise validation("Repository", "name")
        key = (owner.login.lower(), name.lower())
        if key in self.repos:
            raise custom_validation("Repository", "name already exists on this account")
        repo = Repo(owner=owner, name=name, private=private, description=description)
        repo.collaborators.add(creator.login)
        sha = make_sha(repo.full_name, "Initial commit")
        readme = {"README.md": f"# {name}\n".encode()}  # what auto_init writes
        repo.commits[sha] = Commit(sha, "Initial commit", make_sha("tree"), [], creator.login, now(), readme)
        repo.branches["main"] = sha
        self.repos[key] = repo
        return repo

    def find_repo(self, owner: str, name: str, login: str | None) -> Repo:
        """The repository, or 404 when it is unknown or private to someone else (as GitHub hides it)."""
        repo = self.repos.get((owner.lower(), name.lower()))
        if repo is None or not repo.can_read(login):
            raise not_found()
        return repo

    def fork(self, parent: Repo, owner: User) -> Repo:
        existing = next((f for f in parent.forks if f.owner is owner), None)
        if existing is not None:
            return existing
        if parent.owner is owner:
            raise ApiError(403, "Cannot fork a repository you own")
        key = (owner.login.lower(), parent.name.lower())
        if key in self.repos:
            raise custom_validation("Repository", "name already exists on this account")
        fork = Repo(owner=owner, name=parent.name, private=parent.private, description=parent.description)
        fork.parent = parent
        fork.commits = parent.commits  # one object store per fork network, as on GitHub
        fork.branches = dict(parent.branches)
        fork.default_branch = parent.default_branch
        fork.collaborators.add(owner.login)
        parent.forks.append(fork)
        self.repos[key] = fork
        return fork

    # -- commits and refs --------------------------------------------------------------------
    def resolve(self, repo: Repo, ref: str) -> str | None:
        """A branch name, ``heads/x``, ``refs/heads/x`` or a (full or 7+ char) sha -> sha."""
        for prefix in ("refs/heads/", "heads/"):
            if ref.startswith(prefix):
                return repo.branches.get(ref[len(prefix) :])
        if ref in repo.branches:
            return repo.branches[ref]
        if len(ref) >= 7 and all(c in "0123456789abcdef" for c in ref):
            matches = [sha for sha in repo.commits if sha.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
        return None

    def create_commit(
        self,
        repo: Repo,
        *,
        message: str,
        tree: str,
        parents: list[str],
        author: User,
        committed_at: float | None = None,
        files: dict[str, bytes] | None = None,
    ) -> Commit:
        """``files`` is the new snapshot; without it the commit keeps its first parent's files (trees
        are not emulated, so a ``POST git/commits`` changes no file)."""
        for parent in parents:
            if parent not in repo.commits:
                raise validation("Commit", "parents", "invalid", f"Parent SHA {parent} not found")
        if files is None:
            files = dict(repo.commits[parents[0]].files) if parents else {}
        sha = make_sha(repo.full_name, message, tree, *parents)
        commit = Commit(
            sha, message, tree, list(parents), author.login, now() if committed_at is None else committed_at, files
        )
        repo.commits[sha] = commit
        return commit

    def create_ref(self, repo: Repo, ref: str, sha: str, *, sender: User) -> None:
        if not ref.startswith("refs/") or ref.count("/") < 2:
            raise ApiError(422, "Reference name must start with 'refs/' and have at least two slashes.")
        if not ref.startswith("refs/heads/"):
            raise ApiError(422, "Only branch refs (refs/heads/...) are emulated")
        branch = ref[len("refs/heads/") :]
        if branch in repo.branches:
            raise ApiError(422, "Reference already exists")
        if sha not in repo.commits:
            raise ApiError(422, "Object does not exist")
        repo.branches[branch] = sha
        repo.pushed_at = now()
        self.emit(Event("push", repo, sender, extra=_push(branch, "0" * 40, sha, created=True)))

    def move_branch(self, repo: Repo, branch: str, sha: str, *, force: bool, sender: User) -> None:
        """A push: move the head of ``branch``; open pulls whose head it is follow (synchronize)."""
        before = repo.branches.get(branch)
        if before is None:
            raise ApiError(422, "Reference does not exist")
        if sha not in repo.commits:
            raise ApiError(422, "Object does not exist")
        if not force and not repo.is_ancestor(before, sha):
            raise ApiError(422, "Update is not a fast forward")
        if before == sha:
            return
        repo.branches[branch] = sha
        repo.pushed_at = now()
        self.emit(Event("push", repo, sender, extra=_push(branch, before, sha, forced=force)))
        for pull in self.pulls_with_head(repo, branch):
            pull.head_sha = sha
            pull.touch()
            self.emit(
                Event(
                    "pull_request",
                    self.base_of(pull),
                    sender,
                    "synchronize",
                    pull,
                    {"before": before, "after": sha},
                )
            )

    def delete_branch(self, repo: Repo, branch: str, *, sender: User) -> None:
        """Deleting a pull's head branch closes the pull, as GitHub does."""
        before = repo.branches.pop(branch, None)
        if before is None:
            raise ApiError(422, "Reference does not exist")
        self.emit(Event("push", repo, sender, extra=_push(branch, before, "0" * 40, deleted=True)))
        for pull in self.pulls_with_head(repo, branch):
            self.close_pull(self.base_of(pull), pull, sender=sender)

    def pulls_with_head(self, head_repo: Repo, branch: str) -> list[Pull]:
        bases = [head_repo, *([head_repo.parent] if head_repo.parent else []), *head_repo.forks]
        return [
            pull
            for base in bases
            for pull in base.pulls.values()
            if pull.state == "open" and pull.head_repo is head_repo and pull.head_ref == branch
        ]

    def base_of(self, pull: Pull) -> Repo:
        for repo in self.repos.values():
            if repo.pulls.get(pull.number) is pull:
                return repo
        raise not_found()

    # -- pull requests -----------------------------------------------------------------------
    def create_pull(
        self,
        repo: Repo,
        *,
        sender: User,
        title: str | None,
        head: str,
        base: str,
        body: str | None = None,
        draft: bool = False,
        maintainer_can_modify: bool = False,
    ) -> Pull:
        if not title:
            raise validation("PullRequest", "title", "missing_field")
        head_repo, head_ref = self._head_repo(repo, head)
        if base not in repo.branches:
            raise validation("PullRequest", "base", "invalid")
        if head_repo is None or head_ref not in head_repo.branches:
            raise validation("PullRequest", "head", "invalid")
        if head_repo is repo and head_ref == base:
            raise custom_validation("PullRequest", f"No commits between {base} and {head_ref}")
        for other in repo.pulls.values():
            if (
                other.state == "open"
                and other.head_repo is head_repo
                and other.head_ref == head_ref
                and other.base_ref == base
            ):
                label = f"{head_repo.owner.login}:{head_ref}"
                raise custom_validation("PullRequest", f"A pull request already exists for {label}.")
        head_sha = head_repo.branches[head_ref]
        if repo.commits_between(repo.branches[base], head_sha) == 0:
            raise custom_validation("PullRequest", f"No commits between {base} and {head_ref}")
        pull = Pull(
            number=repo.next_number,
            title=title,
            body=body,
            user=sender,
            head_repo=head_repo,
            head_ref=head_ref,
            head_sha=head_sha,
            base_ref=base,
            draft=bool(draft),
            maintainer_can_modify=bool(maintainer_can_modify),
        )
        repo.next_number += 1
        repo.pulls[pull.number] = pull
        self.emit(Event("pull_request", repo, sender, "opened", pull))
        return pull

    def _head_repo(self, repo: Repo, head: str) -> tuple[Repo | None, str]:
        if ":" not in head:
            return repo, head
        owner, ref = head.split(":", 1)
        if owner.lower() == repo.owner.login.lower():
            return repo, ref
        network = [*repo.forks, *([repo.parent] if repo.parent else [])]
        return next((r for r in network if r.owner.login.lower() == owner.lower()), None), ref

    def edit_pull(self, repo: Repo, pull: Pull, changes: dict[str, Any], *, sender: User) -> None:
        if "base" in changes and changes["base"] != pull.base_ref:
            if changes["base"] not in repo.branches:
                raise validation("PullRequest", "base", "invalid")
            pull.base_ref = changes["base"]
            pull.touch()
            self.emit(Event("pull_request", repo, sender, "edited", pull, {"changes": {}}))
        for key in ("title", "body", "maintainer_can_modify"):
            if key in changes and changes[key] != getattr(pull, key):
                setattr(pull, key, changes[key])
                pull.touch()
                self.emit(Event("pull_request", repo, sender, "edited", pull, {"changes": {}}))
        state = changes.get("state")
        if state is None or state == pull.state:
            return
        if state == "closed":
            self.close_pull(repo, pull, sender=sender)
        elif state == "open":
            if pull.merged:
                raise custom_validation("PullRequest", "Cannot reopen a merged pull request")
            if pull.head_ref not in pull.head_repo.branches:
                raise custom_validation("PullRequest", "Cannot reopen: the head branch was deleted")
            if any(
                o.state == "open"
                and o.head_repo is pull.head_repo
                and o.head_ref == pull.head_ref
                and o.base_ref == pull.base_ref
                for o in repo.pulls.values()
            ):
                label = f"{pull.head_repo.owner.login}:{pull.head_ref}"
                raise custom_validation("PullRequest", f"A pull request already exists for {label}.")
            pull.state, pull.closed_at = "open", None
            pull.head_sha = pull.head_repo.branches[pull.head_ref]
            pull.touch()
            self.emit(Event("pull_request", repo, sender, "reopened", pull))
        else:
            raise validation("PullRequest", "state", "invalid")

    def close_pull(self, repo: Repo, pull: Pull, *, sender: User) -> None:
        pull.state = "closed"
        pull.closed_at = now()
        pull.touch()
        self.emit(Event("pull_request", repo, sender, "closed", pull))

    def merge_pull(
        self,
        repo: Repo,
        pull: Pull,
        *,
        sender: User,
        sha: str | None,
        message: str | None,
        method: str = "merge",
    ) -> str:
        """``merge`` makes a two-parent merge commit; ``squash`` and ``rebase`` one commit on the base
        (the head's commits do not reach the base branch, as after a real squash)."""
        if pull.merged or pull.state != "open":
            raise ApiError(405, "Pull Request is not mergeable")
        if pull.draft:
            raise ApiError(405, "Pull Request is still a draft")
        if sha is not None and sha != pull.head_sha:
            raise ApiError(409, "Head branch was modified. Review and try the merge again.")
        if pull.base_ref not in repo.branches:
            raise ApiError(405, "Base branch was deleted")
        base_sha = repo.branches[pull.base_ref]
        title = message or f"Merge pull request #{pull.number} from {pull.head_repo.owner.login}/{pull.head_ref}"
        parents = [base_sha, pull.head_sha] if method == "merge" else [base_sha]
        # no conflicts: the base's files with the head's on top (a head's deletions are not replayed)
        files = {**repo.commits[base_sha].files, **repo.commits[pull.head_sha].files}
        commit = self.create_commit(
            repo, message=title, tree=make_sha("tree"), parents=parents, author=sender, files=files
        )
        repo.branches[pull.base_ref] = commit.sha
        repo.pushed_at = now()
        pull.merged, pull.merged_at, pull.merged_by = True, now(), sender
        pull.merge_commit_sha = commit.sha
        self.emit(Event("push", repo, sender, extra=_push(pull.base_ref, base_sha, commit.sha)))
        self.close_pull(repo, pull, sender=sender)
        return commit.sha

    def set_draft(self, repo: Repo, pull: Pull, draft: bool, *, sender: User) -> None:
        if pull.state != "open":
            raise custom_validation("PullRequest", "Pull request is closed")
        if pull.draft == draft:
            return
        pull.draft = draft
        pull.touch()
        action = "converted_to_draft" if draft else "ready_for_review"
        self.emit(Event("pull_request", repo, sender, action, pull))

    # -- labels ------------------------------------------------------------------------------
    def add_labels(self, repo: Repo, pull: Pull, names: list[str], *, sender: User) -> None:
        for name in names:
            if not isinstance(name, str) or not name:
                raise validation("Label", "name")
            label = repo.labels.get(name.lower())
            if label is None:
                label = repo.labels[name.lower()] = Label(name=name)
            if all(existing is not label for existing in pull.labels):
                pull.labels.append(label)
                pull.touch()
                self.emit(Event("pull_request", repo, sender, "labeled", pull, {"label": label}))

    def remove_label(self, repo: Repo, pull: Pull, name: str, *, sender: User) -> None:
        label = next((lb for lb in pull.labels if lb.name.lower() == name.lower()), None)
        if label is None:
            raise ApiError(404, "Label does not exist")
        pull.labels.remove(label)
        pull.touch()
        self.emit(Event("pull_request", repo, sender, "unlabeled", pull, {"label": label}))

    def set_labels(self, repo: Repo, pull: Pull, names: list[str], *, sender: User) -> None:
        wanted = {n.lower() for n in names}
        for label in list(pull.labels):
            if label.name.lower() not in wanted:
                self.remove_label(repo, pull, label.name, sender=sender)
        self.add_labels(repo, pull, names, sender=sender)


def _push(branch: str, before: str, after: str, **flags: bool) -> dict[str, Any]:
    return {
        "ref": f"refs/heads/{branch}",
        "before": before,
        "after": after,
        "created": flags.get("created", False),
        "deleted": flags.get("deleted", False),
        "forced": flags.get("forced", False),
        "commits": [],
    }
