/* tracker pixel. Paste on every page of the shop:
 *   <script>window.trk=window.trk||function(){(trk.q=trk.q||[]).push(arguments)}</script>
 *   <script async src="https://YOUR-TRACKER/px.js" data-workspace="YOUR-WORKSPACE"></script>
 * Optional attributes: data-param (click-id parameter, default trk_id),
 * data-days (how long the click id is kept, default 5), data-respect-dnt="true".
 * On a thank-you page outside Shopify: trk("purchase", {oid: "1001", v: "49.90", cur: "EUR"}).
 */
(function (w, d) {
  "use strict";
  var script = d.currentScript;
  if (!script) return;
  var base = script.src.replace(/\/px\.js(\?.*)?$/, "");
  var ws = script.getAttribute("data-workspace") || "";
  var param = script.getAttribute("data-param") || "trk_id";
  var days = parseFloat(script.getAttribute("data-days") || "5") || 5;
  var nav = w.navigator || {};
  var queued = (w.trk && w.trk.q) || [];
  if (script.getAttribute("data-respect-dnt") === "true" &&
      (nav.doNotTrack === "1" || w.doNotTrack === "1" || nav.globalPrivacyControl === true)) {
    w.trk = function () {};
    return;
  }
  var COOKIE = "_trk_id";
  var VALID = /^[A-Za-z0-9_-]{6,64}$/;
  function fromCookie() {
    var m = d.cookie.match(/(?:^|;\s*)_trk_id=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }
  var landed = new URLSearchParams(w.location.search).get(param);
  var cid = "";
  if (landed && VALID.test(landed)) {
    // First-party cookie for the attribution window: the click id survives
    // the visitor browsing on before buying.
    cid = landed;
    d.cookie = COOKIE + "=" + encodeURIComponent(cid) + "; Max-Age=" + Math.round(days * 86400) +
      "; Path=/; SameSite=Lax" + (w.location.protocol === "https:" ? "; Secure" : "");
  } else {
    cid = fromCookie();
  }
  function send(event, props) {
    var q = ["w=" + encodeURIComponent(ws), "e=" + encodeURIComponent(event),
             "cid=" + encodeURIComponent(cid || ""),
             "u=" + encodeURIComponent(String(w.location.href).slice(0, 1000)),
             "t=" + Date.now()];
    props = props || {};
    for (var k in props) {
      if (Object.prototype.hasOwnProperty.call(props, k) && props[k] != null) {
        q.push(encodeURIComponent(k) + "=" + encodeURIComponent(String(props[k])));
      }
    }
    var img = new Image(1, 1);
    img.src = base + "/px.gif?" + q.join("&");
  }
  // On a Shopify store, write the click id into the cart's attributes: the
  // order webhook then carries it (note_attributes), cookies or not.
  if (cid && w.Shopify && w.fetch) {
    var attrs = {};
    attrs[param] = cid;
    w.fetch("/cart/update.js", {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({attributes: attrs})}).catch(function () {});
  }
  w.trk = function (event, props) { send(event, props); };
  send("page_view");
  var checkout = w.Shopify && w.Shopify.checkout;
  if (checkout && checkout.order_id) {
    send("purchase", {oid: checkout.order_id, v: checkout.total_price, cur: checkout.currency});
  }
  for (var i = 0; i < queued.length; i++) w.trk.apply(null, queued[i]);
})(window, document);
