"""Pull requests through PyGithub unchanged: open, list, page, edit, close, reopen, merge, draft."""

from __future__ import annotations

import pytest
from github import Github, GithubException
from github.Repository import Repository

from emulators.github_api import GitHubApiServer

from .conftest import ALICE, BOB, client


def new_branch(repo: Repository, name: str) -> str:
    """Create ``name`` with one commit on top of main, via the real endpoints."""
    main = repo.get_branch("main").commit.sha
    tree = repo.get_git_commit(main).tree
    commit = repo.create_git_commit(f"work on {name}", tree, [repo.get_git_commit(main)])
    repo.create_git_ref(f"refs/heads/{name}", commit.sha)
    return commit.sha


def test_repository_starts_with_main_and_a_40_hex_commit(repo: Repository) -> None:
    branch = repo.get_branch("main")
    assert repo.default_branch == "main"
    assert len(branch.commit.sha) == 40
    int(branch.commit.sha, 16)


def test_unknown_repository_is_404(alice: Github) -> None:
    with pytest.raises(GithubException) as err:
        alice.get_repo("alice/nope")
    assert err.value.status == 404


def test_create_pull_sets_head_base_and_draft(repo: Repository) -> None:
    sha = new_branch(repo, "feature")
    pr = repo.create_pull(base="main", head="feature", title="Add feature", body="b", draft=True)
    assert (pr.number, pr.state, pr.draft, pr.merged) == (1, "open", True, False)
    assert pr.head.ref == "feature" and pr.head.sha == sha and pr.head.label == "alice:feature"
    assert pr.base.ref == "main" and pr.base.repo.full_name == "alice/shop"
    assert pr.user.login == "alice"
    assert pr.url.startswith(repo.url)


@pytest.mark.parametrize(
    ("head", "base"),
    [("missing", "main"), ("feature", "missing"), ("main", "main")],
    ids=["missing-head", "missing-base", "head-equals-base"],
)
def test_create_pull_rejects_bad_branches_with_422(repo: Repository, head: str, base: str) -> None:
    new_branch(repo, "feature")
    with pytest.raises(GithubException) as err:
        repo.create_pull(base=base, head=head, title="t")
    assert err.value.status == 422
    assert err.value.data["message"] == "Validation Failed"


def test_create_pull_rejects_branch_without_new_commits(repo: Repository) -> None:
    repo.create_git_ref("refs/heads/empty", repo.get_branch("main").commit.sha)
    with pytest.raises(GithubException) as err:
        repo.create_pull(base="main", head="empty", title="t")
    assert err.value.status == 422
    assert "No commits between main and empty" in str(err.value.data)


def test_duplicate_open_pull_for_same_head_and_base_is_422(repo: Repository) -> None:
    new_branch(repo, "feature")
    repo.create_pull(base="main", head="feature", title="one")
    with pytest.raises(GithubException) as err:
        repo.create_pull(base="main", head="feature", title="two")
    assert err.value.status == 422
    assert "already exists for alice:feature" in str(err.value.data)


def test_get_pulls_follows_link_pages_and_filters_state(gh: GitHubApiServer, repo: Repository) -> None:
    for i in range(7):
        gh.push("alice", "shop", f"b{i}")
        repo.create_pull(base="main", head=f"b{i}", title=f"pr {i}")
    repo.get_pull(2).edit(state="closed")
    assert [p.number for p in repo.get_pulls(state="open")] == [7, 6, 5, 4, 3, 1]  # newest first
    assert [p.number for p in repo.get_pulls(state="closed")] == [2]
    gh.clear_request_log()
    paged = client(gh, ALICE, per_page=3).get_repo("alice/shop")
    assert [p.number for p in paged.get_pulls(state="all", direction="asc")] == [1, 2, 3, 4, 5, 6, 7]
    pages = [r for r in gh.request_log if r.path == "/repos/alice/shop/pulls"]
    assert [(r.query.get("per_page"), r.query.get("page", "1")) for r in pages] == [
        ("3", "1"),
        ("3", "2"),
        ("3", "3"),
    ]
    assert paged.get_pulls(state="all").totalCount == 7


def test_get_pulls_filters_by_base_and_head(gh: GitHubApiServer, repo: Repository) -> None:
    gh.push("alice", "shop", "release")
    gh.push("alice", "shop", "a")
    gh.push("alice", "shop", "b")
    repo.create_pull(base="main", head="a", title="a")
    repo.create_pull(base="release", head="b", title="b")
    assert [p.head.ref for p in repo.get_pulls(base="release")] == ["b"]
    assert [p.head.ref for p in repo.get_pulls(head="alice:a")] == ["a"]


def test_sort_by_updated_puts_recently_touched_first(gh: GitHubApiServer, repo: Repository) -> None:
    for name in ("a", "b"):
        gh.push("alice", "shop", name)
        repo.create_pull(base="main", head=name, title=name)
    repo.get_pull(1).add_to_labels("touch")
    assert [p.number for p in repo.get_pulls(sort="updated", direction="desc")] == [1, 2]


def test_close_and_reopen_through_edit(repo: Repository) -> None:
    new_branch(repo, "feature")
    pr = repo.create_pull(base="main", head="feature", title="t")
    pr.edit(state="closed")
    closed = repo.get_pull(pr.number)
    assert closed.state == "closed" and closed.closed_at is not None and not closed.merged
    pr.edit(state="open")
    reopened = repo.get_pull(pr.number)
    assert reopened.state == "open" and reopened.closed_at is None


def test_merge_closes_and_moves_base(repo: Repository) -> None:
    head = new_branch(repo, "feature")
    pr = repo.create_pull(base="main", head="feature", title="t")
    status = pr.merge()
    assert status.merged
    merged = repo.get_pull(pr.number)
    assert merged.merged and merged.state == "closed" and merged.merged_at is not None
    assert merged.merge_commit_sha == status.sha == repo.get_branch("main").commit.sha
    assert merged.merged_by.login == "alice"
    assert merged.is_merged()
    parents = [p.sha for p in repo.get_commit(status.sha).parents]
    assert parents[1] == head


def test_merge_of_closed_pull_is_405(repo: Repository) -> None:
    new_branch(repo, "feature")
    pr = repo.create_pull(base="main", head="feature", title="t")
    pr.edit(state="closed")
    with pytest.raises(GithubException) as err:
        pr.merge()
    assert err.value.status == 405


def test_moving_the_head_branch_updates_the_pull(repo: Repository) -> None:
    first = new_branch(repo, "feature")
    pr = repo.create_pull(base="main", head="feature", title="t")
    tree = repo.get_git_commit(first).tree
    second = repo.create_git_commit("more", tree, [repo.get_git_commit(first)])
    repo.get_git_ref("heads/feature").edit(second.sha)
    moved = repo.get_pull(pr.number)
    assert moved.head.sha == second.sha
    assert moved.updated_at >= pr.updated_at


def test_non_fast_forward_push_needs_force(repo: Repository) -> None:
    new_branch(repo, "feature")
    main = repo.get_branch("main").commit.sha
    ref = repo.get_git_ref("heads/feature")
    with pytest.raises(GithubException) as err:
        ref.edit(main)
    assert err.value.status == 422
    ref.edit(main, force=True)
    assert repo.get_branch("feature").commit.sha == main


def test_labels_added_and_removed_appear_on_the_pull(repo: Repository) -> None:
    new_branch(repo, "feature")
    pr = repo.create_pull(base="main", head="feature", title="t")
    pr.add_to_labels("preview", "qa")
    assert sorted(lb.name for lb in repo.get_pull(pr.number).labels) == ["preview", "qa"]
    pr.remove_from_labels("qa")
    assert [lb.name for lb in repo.get_pull(pr.number).get_labels()] == ["preview"]
    with pytest.raises(GithubException) as err:
        pr.remove_from_labels("qa")
    assert err.value.status == 404


def test_label_names_with_spaces_round_trip(repo: Repository) -> None:
    new_branch(repo, "feature")
    pr = repo.create_pull(base="main", head="feature", title="t")
    pr.add_to_labels("needs review")
    pr.remove_from_labels("needs review")
    assert list(repo.get_pull(pr.number).get_labels()) == []


def test_reopen_refused_while_another_pull_is_open_for_the_same_head(repo: Repository) -> None:
    new_branch(repo, "feature")
    first = repo.create_pull(base="main", head="feature", title="one")
    first.edit(state="closed")
    repo.create_pull(base="main", head="feature", title="two")
    with pytest.raises(GithubException) as err:
        first.edit(state="open")
    assert err.value.status == 422


def test_draft_to_ready_and_back_through_graphql(repo: Repository) -> None:
    new_branch(repo, "feature")
    pr = repo.create_pull(base="main", head="feature", title="t", draft=True)
    pr.mark_ready_for_review()
    assert repo.get_pull(pr.number).draft is False
    pr.convert_to_draft()
    assert repo.get_pull(pr.number).draft is True


def test_draft_cannot_be_merged(repo: Repository) -> None:
    new_branch(repo, "feature")
    pr = repo.create_pull(base="main", head="feature", title="t", draft=True)
    with pytest.raises(GithubException) as err:
        pr.merge()
    assert err.value.status == 405


def test_fork_pull_request_from_another_user(gh: GitHubApiServer, repo: Repository) -> None:
    bob = client(gh, BOB)
    fork = bob.get_repo("alice/shop").create_fork()
    assert fork.full_name == "bob/shop" and fork.fork and fork.parent.full_name == "alice/shop"
    sha = gh.push("bob", "shop", "patch")
    pr = bob.get_repo("alice/shop").create_pull(base="main", head="bob:patch", title="from fork")
    assert pr.head.repo.full_name == "bob/shop" and pr.head.label == "bob:patch" and pr.head.sha == sha
    moved = gh.push("bob", "shop", "patch")
    assert repo.get_pull(pr.number).head.sha == moved


def test_deleting_head_branch_closes_the_pull(repo: Repository) -> None:
    new_branch(repo, "feature")
    pr = repo.create_pull(base="main", head="feature", title="t")
    repo.get_git_ref("heads/feature").delete()
    assert repo.get_pull(pr.number).state == "closed"


def test_private_repository_is_404_to_others(gh: GitHubApiServer, alice: Github) -> None:
    alice.get_user().create_repo("secret", private=True)
    with pytest.raises(GithubException) as err:
        client(gh, BOB).get_repo("alice/secret")
    assert err.value.status == 404
    assert alice.get_repo("alice/secret").private is True


def test_org_repository_is_created_under_the_org(alice: Github) -> None:
    org_repo = alice.get_organization("acme").create_repo("platform")
    assert org_repo.full_name == "acme/platform"
    assert org_repo.owner.type == "Organization"


def test_edit_title_and_base(gh: GitHubApiServer, repo: Repository) -> None:
    gh.push("alice", "shop", "release")
    new_branch(repo, "feature")
    pr = repo.create_pull(base="main", head="feature", title="t")
    pr.edit(title="better", base="release")
    edited = repo.get_pull(pr.number)
    assert (edited.title, edited.base.ref) == ("better", "release")
    with pytest.raises(GithubException) as err:
        pr.edit(base="nope")
    assert err.value.status == 422


def test_pull_is_also_an_issue(repo: Repository) -> None:
    new_branch(repo, "feature")
    pr = repo.create_pull(base="main", head="feature", title="t")
    pr.add_to_labels("qa")
    issue = pr.as_issue()
    assert issue.number == pr.number and issue.pull_request is not None
    assert [lb.name for lb in issue.labels] == ["qa"]


def test_commit_date_from_the_api_makes_a_branch_look_idle(gh: GitHubApiServer, repo: Repository) -> None:
    from datetime import UTC, datetime

    from github import InputGitAuthor

    main = repo.get_git_commit(repo.get_branch("main").commit.sha)
    when = "2020-01-02T03:04:05Z"
    old = repo.create_git_commit("old", main.tree, [main], committer=InputGitAuthor("a", "a@x", when))
    repo.create_git_ref("refs/heads/stale", old.sha)
    assert repo.get_commit(old.sha).commit.committer.date == datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    sha = gh.push("alice", "shop", "idle", committed_at=1_600_000_000)
    assert repo.get_commit(sha).commit.committer.date.timestamp() == 1_600_000_000


def test_pull_commits_and_branch_history(gh: GitHubApiServer, repo: Repository) -> None:
    first = gh.push("alice", "shop", "feature", committed_at=1_600_000_000)
    second = gh.push("alice", "shop", "feature", committed_at=1_600_000_100)
    pr = repo.create_pull(base="main", head="feature", title="t")
    assert [c.sha for c in pr.get_commits()] == [first, second]
    assert pr.commits == 2
    history = [c.sha for c in repo.get_commits(sha="feature")]
    assert history[:2] == [second, first] and len(history) == 3


def test_merge_with_stale_sha_is_409(repo: Repository) -> None:
    first = new_branch(repo, "feature")
    pr = repo.create_pull(base="main", head="feature", title="t")
    tree = repo.get_git_commit(first).tree
    newer = repo.create_git_commit("more", tree, [repo.get_git_commit(first)])
    repo.get_git_ref("heads/feature").edit(newer.sha)
    with pytest.raises(GithubException) as err:
        pr.merge(sha=first)
    assert err.value.status == 409
    assert pr.merge(sha=newer.sha).merged


def test_squash_merge_makes_one_commit_on_the_base(repo: Repository) -> None:
    new_branch(repo, "feature")
    main_before = repo.get_branch("main").commit.sha
    status = repo.create_pull(base="main", head="feature", title="t").merge(merge_method="squash")
    assert [p.sha for p in repo.get_commit(status.sha).parents] == [main_before]
    assert repo.get_branch("main").commit.sha == status.sha
