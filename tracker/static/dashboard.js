// The window switch, sorting and the date range update the page in place: the
// server renders the same page, and only <main> is swapped. Without this
// script every link and form still works as a normal page load.
(function () {
  "use strict";
  async function load(url) {
    document.documentElement.classList.add("loading");
    try {
      const res = await fetch(url, { credentials: "same-origin" });
      if (res.redirected || !res.ok) { window.location.href = url; return; }
      const doc = new DOMParser().parseFromString(await res.text(), "text/html");
      const fresh = doc.getElementById("main");
      if (!fresh) { window.location.href = url; return; }
      document.getElementById("main").replaceWith(fresh);
      document.title = doc.title;
      history.replaceState(null, "", url);
    } catch (e) {
      window.location.href = url;
    } finally {
      document.documentElement.classList.remove("loading");
    }
  }
  document.addEventListener("click", function (ev) {
    const a = ev.target.closest && ev.target.closest("a[data-live]");
    if (!a || ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
    ev.preventDefault();
    load(a.href);
  });
  document.addEventListener("submit", function (ev) {
    const form = ev.target;
    if (!form.hasAttribute("data-live")) return;
    ev.preventDefault();
    const params = new URLSearchParams(new FormData(form));
    for (const [k, v] of [...params.entries()]) { if (!v) params.delete(k); }
    load(window.location.pathname + "?" + params.toString());
  });
})();
