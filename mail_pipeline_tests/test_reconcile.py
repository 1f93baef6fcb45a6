"""Flag and expunge reconciliation, pure: VANISHED parsing, sequence sets, which days changed,
and what a day's stored rows become (flags, keep/mirror, moves, UIDVALIDITY resets)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from mail_pipeline.imap.errors import ImapProtocolError
from mail_pipeline.imap.modseq import FlagState, parse_vanished
from mail_pipeline.imap.records import MessageMeta, sequence_set
from mail_pipeline.message.records import keywords, merge_copies
from mail_pipeline.sync import changes
from mail_pipeline.sync.apply import candidates, edit_day
from mail_pipeline.sync.changes import FolderCursor
from mail_pipeline.sync.plan import FolderPlan
from mail_pipeline.sync.reconcile import StoredMessage, flag_days, gone_days

UTC = UTC
D1, D2 = date(2026, 11, 18), date(2026, 11, 19)
WHEN = datetime(2026, 11, 19, 9, tzinfo=UTC)
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ([b"(EARLIER) 41,43:45"], {41, 43, 44, 45}),
        ([b"7"], {7}),
        ([b"(earlier) 5:3"], {3, 4, 5}),  # a range may be written high to low (RFC 3501 9)
        ([b"1,3", b"(EARLIER) 9"], {1, 3, 9}),
        ([], set()),
    ],
)
def test_parse_vanished(data, expected):
    assert parse_vanished(data) == expected


@pytest.mark.parametrize("bad", [[b"(EARLIER)"], [b"1:*"], [b"a,b"], [b"(EARLIER) 1 2"]])
def test_parse_vanished_refuses_what_it_cannot_read(bad):
    with pytest.raises(ImapProtocolError):
        parse_vanished(bad)


@pytest.mark.parametrize(
    ("uids", "expected"), [([1, 2, 3, 7], "1:3,7"), ([5], "5"), ([9, 8, 8, 10, 1], "1,8:10")]
)
def test_sequence_set(uids, expected):
    assert sequence_set(uids) == expected


def test_cursor_keeps_messages_and_reconcile_times():
    cursors = {"alice": {"INBOX": FolderCursor(7, 10, 100, 9)}}
    text = changes.dump_cursors(cursors, {"alice": 1.0}, {"alice": 2.0})
    assert changes.load_cursors(text) == cursors
    assert changes.load_listed(text) == {"alice": 1.0}
    assert changes.load_listed(text, changes.RECONCILED_KEY) == {"alice": 2.0}
    # A cursor written before MESSAGES was kept still loads (messages unknown).
    assert changes.load_cursors('{"alice":{"INBOX":[7,10,100]}}')["alice"]["INBOX"] == FolderCursor(
        7, 10, 100, None
    )


def test_flag_and_gone_days():
    stored = {
        1: StoredMessage(D1, frozenset()),
        2: StoredMessage(D2, frozenset({"\\Seen"})),
        3: StoredMessage(D2, frozenset()),
    }
    states = [
        FlagState(1, ("\\Flagged",)),
        FlagState(2, ("\\Seen",)),
        FlagState(9, (), WHEN),
        FlagState(10, ()),
    ]
    assert flag_days(states, stored, {D1, D2}) == {
        D1,
        D2,
    }  # 1 changed; 9 is unknown but in the window
    assert flag_days(states[1:2], stored, {D1, D2}) == set()
    assert gone_days({3, 77}, stored) == {D2}


def raw(
    folder,
    uid,
    *,
    flags=(),
    mid=None,
    sha=None,
    deleted_at=None,
    uidvalidity=7,
    size=100,
    reason=None,
):
    return {
        "folder": folder,
        "uidvalidity": uidvalidity,
        "uid": uid,
        "internaldate": WHEN,
        "flags": list(flags),
        "size": size,
        "sha256": sha or f"sha-{mid or uid}",
        "message_id": mid,
        "deleted_at": deleted_at,
        "deleted_reason": reason,
    }


def folder_plan(folder, present, to_fetch=(), uidvalidity=7):
    metas = {uid: MessageMeta(uid, WHEN, 100, tuple(flags)) for uid, flags in present.items()}
    return FolderPlan(
        folder=folder,
        uidvalidity=uidvalidity,
        highest_uid=max(metas, default=0),
        on_server=len(metas),
        to_fetch=[metas[uid] for uid in to_fetch],
        already_stored=len(metas) - len(to_fetch),
        present=metas,
    )


def test_flags_follow_the_server_and_unchanged_rows_stay():
    stored = [raw("INBOX", 1, flags=["\\Seen"]), raw("INBOX", 2)]
    edits = edit_day(stored, [folder_plan("INBOX", {1: [], 2: []})], set(), "keep", NOW)
    assert edits.outputs == [[{"flags": []}], [{}]] and edits.flags_updated == 1 and edits.changed
    assert not edit_day(stored[1:], [folder_plan("INBOX", {2: []})], set(), "keep", NOW).changed


@pytest.mark.parametrize(
    ("policy", "expected"), [("keep", [[{}], [{"deleted_at": NOW}]]), ("mirror", [[{}], []])]
)
def test_an_expunged_message_is_kept_or_erased(policy, expected):
    stored = [raw("INBOX", 1, mid="a"), raw("INBOX", 2, mid="b")]
    edits = edit_day(stored, [folder_plan("INBOX", {1: []})], set(), policy, NOW)
    assert edits.outputs == expected and edits.gone == 1


def test_a_moved_message_takes_its_stored_body_to_the_new_folder():
    stored = [raw("INBOX", 5, mid="m", flags=["\\Seen"])]
    plans = [
        folder_plan("INBOX", {}),
        folder_plan("Archive", {3: ["\\Seen"]}, to_fetch=[3], uidvalidity=9),
    ]
    assert candidates(stored, {"Archive": plans[1].to_fetch}) == {"Archive": [3]}
    edits = edit_day(stored, plans, set(), "mirror", NOW, {("Archive", 3): "m"})
    assert edits.outputs == [
        [
            {
                "folder": "Archive",
                "uidvalidity": 9,
                "uid": 3,
                "flags": ["\\Seen"],
                "deleted_at": None,
                "deleted_reason": None,
            }
        ]
    ]
    assert edits.to_fetch == {"INBOX": [], "Archive": []} and edits.reused == 1 and edits.gone == 0


def test_a_different_message_id_is_downloaded():
    stored = [raw("INBOX", 5, mid="m")]
    plans = [folder_plan("INBOX", {5: []}), folder_plan("Archive", {3: []}, to_fetch=[3])]
    edits = edit_day(stored, plans, set(), "keep", NOW, {("Archive", 3): "other"})
    assert [m.uid for m in edits.to_fetch["Archive"]] == [3] and edits.outputs == [[{}]]


def test_a_copy_still_on_the_server_elsewhere_is_not_deleted():
    stored = [raw("INBOX", 1, mid="m", sha="s"), raw("Archive", 4, mid="m", sha="s")]
    plans = [folder_plan("INBOX", {}), folder_plan("Archive", {4: []})]
    edits = edit_day(stored, plans, set(), "keep", NOW)
    assert edits.outputs == [[], [{}]] and edits.gone == 0


def test_uidvalidity_reset_matches_new_uids_to_stored_rows():
    stored = [raw("INBOX", 1, mid="a"), raw("INBOX", 2, mid="b")]
    plan = folder_plan("INBOX", {1: [], 2: []}, to_fetch=[1, 2], uidvalidity=8)
    edits = edit_day(stored, [plan], set(), "keep", NOW, {("INBOX", 1): "a", ("INBOX", 2): "b"})
    assert edits.outputs == [
        [
            {
                "folder": "INBOX",
                "uidvalidity": 8,
                "uid": 1,
                "flags": [],
                "deleted_at": None,
                "deleted_reason": None,
            }
        ],
        [
            {
                "folder": "INBOX",
                "uidvalidity": 8,
                "uid": 2,
                "flags": [],
                "deleted_at": None,
                "deleted_reason": None,
            }
        ],
    ]
    assert edits.to_fetch == {"INBOX": []}


def test_tombstones_stay_under_keep_and_go_under_mirror_or_when_the_message_is_back():
    stored = [raw("INBOX", 1, mid="a", deleted_at=NOW)]
    assert edit_day(stored, [folder_plan("INBOX", {})], set(), "keep", NOW).outputs == [[{}]]
    assert edit_day(stored, [folder_plan("INBOX", {})], set(), "mirror", NOW).outputs == [[]]
    back = edit_day(
        stored,
        [folder_plan("INBOX", {2: []}, to_fetch=[2])],
        set(),
        "keep",
        NOW,
        {("INBOX", 2): "a"},
    )
    assert back.outputs == [
        [
            {
                "folder": "INBOX",
                "uidvalidity": 7,
                "uid": 2,
                "flags": [],
                "deleted_at": None,
                "deleted_reason": None,
            }
        ]
    ]


@pytest.mark.parametrize(
    ("plans", "policy", "ids", "state_only"),
    [
        ([folder_plan("INBOX", {1: [], 2: ["\\Seen"]})], "keep", {}, True),  # flags only
        ([folder_plan("INBOX", {1: []})], "keep", {}, True),  # an expunge kept with deleted_at
        # an expunge erased: the bodies file loses it
        (
            [folder_plan("INBOX", {1: []})],
            "mirror",
            {},
            False,
        ),
        # new mail to download
        (
            [folder_plan("INBOX", {1: [], 2: [], 3: []}, to_fetch=[3])],
            "keep",
            {},
            False,
        ),
        # a move: the body gets a second row
        (
            [folder_plan("INBOX", {1: []}), folder_plan("Archive", {3: []}, to_fetch=[3])],
            "keep",
            {("Archive", 3): "b"},
            False,
        ),
    ],
)
def test_only_flag_and_deletion_edits_leave_the_bodies_file_alone(plans, policy, ids, state_only):
    stored = [raw("INBOX", 1, mid="a"), raw("INBOX", 2, mid="b")]
    edits = edit_day(stored, plans, set(), policy, NOW, ids)
    assert edits.changed and edits.state_only == state_only


def test_mirror_counts_the_tombstones_it_erases():
    stored = [
        raw("INBOX", 1, mid="a"),
        *(raw("INBOX", uid, mid=f"t{uid}", deleted_at=NOW) for uid in (2, 3, 4)),
    ]
    edits = edit_day(stored, [folder_plan("INBOX", {})], set(), "mirror", NOW)
    assert edits.outputs == [[], [], [], []]
    assert (edits.gone, edits.erased) == (1, 4)


@pytest.mark.parametrize(
    ("policy", "expected", "erased"),
    [
        ("keep", [[{"deleted_at": NOW, "deleted_reason": "folder_gone"}], [{}], [{}]], 0),
        ("mirror", [[], [], [{}]], 2),
    ],
)
def test_a_vanished_folders_messages_are_marked_or_erased(policy, expected, erased):
    stored = [
        raw("Archive", 1, mid="a"),
        raw("Archive", 2, mid="b", deleted_at=NOW),
        raw("INBOX", 3, mid="c"),
    ]
    edits = edit_day(stored, [folder_plan("INBOX", {3: []})], {"Archive"}, policy, NOW)
    assert edits.outputs == expected
    assert (edits.gone, edits.folder_gone, edits.erased) == (1, 1, erased)


def test_a_renamed_folder_moves_by_uidvalidity_and_uid_without_a_message_id():
    stored = [raw("Archive", 4, flags=["\\Seen"]), raw("Archive", 5, size=200)]
    # same UIDVALIDITY, 5's size differs
    plan = folder_plan("Projects", {4: ["\\Seen"], 5: []}, to_fetch=[4, 5])
    edits = edit_day(stored, [plan], {"Archive"}, "keep", NOW)
    assert edits.outputs == [
        [
            {
                "folder": "Projects",
                "uidvalidity": 7,
                "uid": 4,
                "flags": ["\\Seen"],
                "deleted_at": None,
                "deleted_reason": None,
            }
        ],
        [{"deleted_at": NOW, "deleted_reason": "folder_gone"}],
    ]
    assert [m.uid for m in edits.to_fetch["Projects"]] == [5] and (edits.reused, edits.gone) == (
        1,
        1,
    )


def test_rows_of_a_folder_no_longer_synced_are_counted_as_erased():
    stored = [raw("Old", 1, mid="a"), raw("INBOX", 2, mid="b")]
    edits = edit_day(stored, [folder_plan("INBOX", {2: []})], set(), "keep", NOW)
    assert edits.outputs == [[], [{}]] and (edits.erased, edits.unsynced, edits.gone) == (1, 1, 0)


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="on_server_delete"):
        edit_day([], [], set(), "purge", NOW)


def email(folder, *, flagged=False, deleted_at=None, kw=()):
    return {
        "email_id": "e",
        "seen": False,
        "answered": False,
        "flagged": flagged,
        "keywords": list(kw),
        "locations": [{"folder": folder, "uidvalidity": 1, "uid": 1}],
        "received_at": WHEN,
        "deleted_at": deleted_at,
    }


def test_merged_email_follows_the_copies_on_the_server():
    merged, copies = merge_copies(
        [email("INBOX", flagged=True, deleted_at=NOW), email("Archive", kw=["$Work"])]
    )
    assert copies == 1 and merged[0]["deleted_at"] is None and not merged[0]["flagged"]
    assert [loc["folder"] for loc in merged[0]["locations"]] == ["Archive"] and merged[0][
        "keywords"
    ] == ["$Work"]
    gone, _ = merge_copies([email("INBOX", deleted_at=NOW), email("Archive", deleted_at=WHEN)])
    assert gone[0]["deleted_at"] == NOW and len(gone[0]["locations"]) == 2


def test_keywords_are_the_non_system_flags():
    assert keywords(["\\Seen", "$Work", "Urgent", "\\Flagged", "$Work"]) == ["$Work", "Urgent"]


def test_recent_is_a_sessions_flag_not_a_change():
    stored = {1: StoredMessage(D1, frozenset({"\\Seen"}))}
    assert flag_days([FlagState(1, ("\\Seen", "\\Recent"))], stored, {D1}) == set()
    plan = folder_plan("INBOX", {1: ["\\Seen"]})
    assert not edit_day(
        [raw("INBOX", 1, flags=["\\Seen", "\\Recent"])], [plan], set(), "keep", NOW
    ).changed
