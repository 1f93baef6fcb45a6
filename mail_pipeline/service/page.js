// The search page: mail content only ever enters the page through textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

async function api(path, params) {
  const query = params ? "?" + new URLSearchParams(params).toString() : "";
  const reply = await fetch("/api/" + path + query);
  if (reply.status === 401) {
    location.assign("/"); // signed out or the token was revoked: back to the sign-in form
    throw new Error("signed out");
  }
  const body = await reply.json();
  if (!reply.ok) throw new Error(body.error || reply.statusText);
  return body;
}

function showStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function when(iso) {
  return iso ? iso.replace("T", " ").slice(0, 16) : "";
}

// The snippet as text nodes, with the server's [start, end) marks wrapped in <mark>. The marks
// count code points (Python's string indices), so the text is cut by code points too.
function marked(text, marks) {
  const out = element("div", "snippet");
  const chars = Array.from(text);
  const cut = (start, end) => chars.slice(start, end).join("");
  let at = 0;
  for (const [start, end] of marks || []) {
    if (start < at) continue;
    out.append(document.createTextNode(cut(at, start)), element("mark", null, cut(start, end)));
    at = end;
  }
  out.append(document.createTextNode(cut(at)));
  return out;
}

function hitItem(hit) {
  const item = element("li", "hit");
  item.tabIndex = 0;
  item.dataset.emailId = hit.email_id;
  const meta = element("div", "meta");
  meta.append(element("span", "sender", hit.sender), element("span", "date", when(hit.sent_at || hit.day)),
              element("span", "account", hit.account));
  if (hit.deleted_at) meta.append(element("span", "deleted", "deleted on the server " + hit.deleted_at.slice(0, 10)));
  item.append(meta, element("div", "subject", hit.subject || "(no subject)"), marked(hit.snippet || "", hit.marks));
  if (hit.attachment) item.append(element("div", "attachment", "in attachment: " + hit.attachment));
  item.dataset.account = hit.account;
  item.setAttribute("role", "option");
  item.setAttribute("aria-selected", "false");
  const open = () => openEmail(hit.email_id, hit.account, { push: true });
  item.addEventListener("click", open);
  item.addEventListener("keydown", (event) => { if (event.key === "Enter") open(); });
  return item;
}

// A new search starts from an empty detail pane: the email opened before belongs to old results.
function clearDetail() {
  $("detail").hidden = true;
  delete $("detail").dataset.emailId;
  for (const id of ["email-subject", "email-attachments", "email-body"]) $(id).textContent = "";
  $("email-headers").replaceChildren();
  $("thread").replaceChildren();
}

// The search and the open email live in the URL (?q=…&mode=…&email=…&email_account=…), so a
// search can be bookmarked, shared, reloaded and gone back to. Defaults are left out.
const FILTERS = ["q", "mode", "account", "since", "until"];

function formState() {
  const state = Object.fromEntries(FILTERS.map((name) => [name, $(name).value]));
  state.exclude_deleted = $("exclude_deleted").checked ? "1" : "0";
  return state;
}

function urlFor(state, email) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(state)) {
    if (value && !(name === "mode" && value === "hybrid") && !(name === "exclude_deleted" && value === "0")) {
      params.set(name, value);
    }
  }
  if (email) {
    params.set("email", email.id);
    if (email.account) params.set("email_account", email.account);
  }
  return "?" + params.toString();
}

function pushUrl(state, email) {
  const url = urlFor(state, email);
  if (url !== location.search || location.hash) history.pushState(null, "", url);
}

// Answers can arrive out of order (back pressed twice quickly): only the latest search shows.
// An email opened goes in the URL beside the search shown, not what the form holds by then.
let searchCount = 0;
let shown = {};

async function search(state, email) {
  const mine = ++searchCount;
  shown = state;
  showStatus("Searching…");
  $("results").replaceChildren();
  clearDetail();
  try {
    const answer = await api("search", { ...state, k: "20" });
    if (mine !== searchCount) return;
    const hits = answer.results;
    $("results").replaceChildren(...hits.map(hitItem));
    showStatus(hits.length ? `${hits.length} result${hits.length === 1 ? "" : "s"}` : answer.note || "No matches");
    if (email) await openEmail(email.id, email.account, { push: false });
  } catch (error) {
    if (mine === searchCount) showStatus(error.message, true);
  }
}

async function runSearch(event) {
  if (event) event.preventDefault();
  const state = formState();
  pushUrl(state, null);
  await search(state, null);
}

// Reload, a bookmark, back and forward: the form and the results as the URL says.
async function restoreFromUrl() {
  const params = new URLSearchParams(location.search);
  if (!params.get("q")) {
    searchCount++;
    shown = {};
    $("results").replaceChildren();
    clearDetail();
    showStatus("");
    return;
  }
  for (const name of FILTERS) $(name).value = params.get(name) || (name === "mode" ? "hybrid" : "");
  $("exclude_deleted").checked = params.get("exclude_deleted") === "1";
  const id = params.get("email");
  await search(formState(), id ? { id, account: params.get("email_account") || "" } : null);
}

function addresses(list) {
  return (list || []).map((a) => (a.name ? `${a.name} <${a.address}>` : a.address)).join(", ");
}

function showEmail(email) {
  $("detail").hidden = false;
  $("detail").dataset.emailId = email.email_id;
  $("email-subject").textContent = email.subject || "(no subject)";
  const from = email.from_name ? `${email.from_name} <${email.from_address}>` : email.from_address;
  const rows = [["From", from], ["To", addresses(email.to)], ["Cc", addresses(email.cc)],
                ["Date", when(email.sent_at || email.received_at)], ["Arrived", when(email.received_at)],
                ["Account", email.account], ["Folders", (email.locations || []).map((l) => l.folder).join(", ")],
                ["Message-ID", email.message_id]];
  $("email-headers").replaceChildren(...rows.filter(([, value]) => value).flatMap(
    ([name, value]) => [element("dt", null, name), element("dd", null, value)]));
  const files = (email.attachments || []).map((a) => a.filename).filter(Boolean);
  $("email-attachments").textContent = files.length ? "Attachments: " + files.join(", ") : "";
  $("email-body").textContent = email.body_text || "";
}

function showThread(thread, currentId) {
  $("thread").replaceChildren(...thread.emails.map((email) => {
    const item = element("li", email.email_id === currentId ? "current" : "",
                         `${when(email.sent_at || email.received_at)}  ${email.from_name || email.from_address}: ${email.subject || ""}`);
    item.dataset.emailId = email.email_id;
    item.addEventListener("click", () => openEmail(email.email_id, email.account, { push: true }));
    return item;
  }));
}

// The open email's result is the selected one; none is when it is not among the results.
function selectResult(emailId) {
  for (const node of document.querySelectorAll("#results .hit")) {
    const chosen = node.dataset.emailId === emailId;
    node.classList.toggle("selected", chosen);
    node.setAttribute("aria-selected", String(chosen));
  }
}

async function openEmail(emailId, account, { push = false } = {}) {
  if (push) pushUrl(shown, { id: emailId, account });
  try {
    const email = await api("emails/" + encodeURIComponent(emailId), { account });
    showEmail(email);
    selectResult(emailId);
    showThread(await api("threads/" + encodeURIComponent(email.thread_id), { account }), emailId);
  } catch (error) {
    showStatus(error.message, true);
  }
}

async function loadAccounts() {
  try {
    const accounts = await api("accounts");
    $("account").append(...accounts.map((a) => {
      const option = element("option", null, a.account);
      option.value = a.account;
      return option;
    }));
  } catch (error) {
    showStatus(error.message, true);
  }
}

// People and the digest (issue 28): kept apart from the search functions above.

function listOf(id, rows, text, onClick) {
  $(id).replaceChildren(...rows.map((row) => {
    const item = element("li", null, text(row));
    item.addEventListener("click", () => onClick(row));
    return item;
  }));
}

async function showPerson(who, account) {
  try {
    const person = await api("people/" + encodeURIComponent(who), account ? { account } : undefined);
    $("detail").hidden = true;
    $("person").hidden = false;
    $("person-name").textContent = who;
    const contact = person.contacts[0] || {};
    const facts = [["Address", person.addresses.join(", ")], ["Organisation", contact.organisation],
                   ["From them", contact.messages_from], ["To them", contact.messages_to],
                   ["Last written to", when(contact.last_written_to)]];
    $("person-facts").replaceChildren(...facts.filter(([, value]) => value !== undefined && value !== "")
      .flatMap(([name, value]) => [element("dt", null, name), element("dd", null, String(value))]));
    const open = (row) => { $("person").hidden = true; openEmail(row.email_id, row.account); };
    listOf("person-emails", person.emails,
           (e) => `${when(e.sent_at || e.received_at)}  ${e.from_name || e.from_address}: ${e.subject || ""}`, open);
    listOf("person-threads", person.threads, (t) => `${t.subject || "(no subject)"} (${t.messages})`,
           (t) => open(person.emails.find((e) => e.thread_id === t.thread_id) || {}));
  } catch (error) {
    showStatus(error.message, true);
  }
}

// A click on a sender's name in a result opens that person instead of the email.
function onSenderClick(event) {
  const sender = event.target.closest(".hit .sender");
  if (!sender) return;
  event.stopPropagation();
  const account = sender.parentElement.querySelector(".account");
  showPerson(sender.textContent, account ? account.textContent : "");
}

async function showDigest() {
  const account = $("account").value || ($("account").options[1] || {}).value;
  if (!account) return showStatus("no account to make a digest of", true);
  try {
    const digest = await api("digest", { account, day: $("until").value, since: $("since").value });
    $("digest-title").textContent = `Digest for ${digest.account}, ${digest.first}` +
      (digest.first === digest.last ? "" : ` to ${digest.last}`);
    $("digest-sections").replaceChildren(...digest.sections.flatMap((section) => {
      const list = element("ul", "digest-items");
      list.dataset.section = section.name;
      list.append(...section.items.map((item) => {
        const entry = element("li", "digest-item");
        entry.append(element("span", "subject", item.subject || "(no subject)"),
                     element("span", "meta", ` from ${item.sender}${item.detail ? " (" + item.detail + ")" : ""}`),
                     element("div", "snippet", item.extract));
        entry.addEventListener("click", () => openEmail(item.email_id, digest.account));
        return entry;
      }));
      return [element("h3", null, `${section.title} (${section.items.length})`), list];
    }));
    $("digest").hidden = false;
  } catch (error) {
    showStatus(error.message, true);
  }
}

// Links in a digest open one email: #email=<id>&account=<slug>.
function openFromHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.get("email")) openEmail(params.get("email"), params.get("account") || "");
}

$("search").addEventListener("submit", runSearch);
$("results").addEventListener("click", onSenderClick, true);
$("show-digest").addEventListener("click", showDigest);
window.addEventListener("hashchange", openFromHash);
// A digest link's #email=… is hashchange's; every other step back or forward restores the URL's.
window.addEventListener("popstate", () => { if (!location.hash) restoreFromUrl(); });
// The accounts first: a URL's account filter needs its option in the list.
loadAccounts().then(() => (location.search ? restoreFromUrl() : openFromHash()));

// Keyboard: ↓/j and ↑/k open the next and previous result, Esc closes the open email. Keys typed
// into the search form stay the form's.
function moveSelection(step) {
  const hits = Array.from(document.querySelectorAll("#results .hit"));
  if (!hits.length) return;
  const at = hits.findIndex((node) => node.classList.contains("selected"));
  const next = hits[Math.min(hits.length - 1, Math.max(0, at < 0 ? 0 : at + step))];
  next.focus();
  next.click();
}

document.addEventListener("keydown", (event) => {
  if (event.target.closest && event.target.closest("form")) return;
  if (event.altKey || event.ctrlKey || event.metaKey) return;
  const step = { ArrowDown: 1, j: 1, ArrowUp: -1, k: -1 }[event.key];
  if (step) {
    event.preventDefault();
    moveSelection(step);
  } else if (event.key === "Escape") {
    selectResult(null);
    clearDetail();
  }
});
