// Custodes dashboard: sign a kill order in the browser with the regulator's own key.
//
// The key file (CUSTODES+ENTRY+KEY+<name>+<base64 seed>) is read here and never sent:
// its file input has no name, so the form cannot carry it. The 32-byte seed becomes a
// PKCS#8 Ed25519 key for WebCrypto, which signs the DSSE PAE bytes the node showed
// (data-pae). The page then posts the payload, the signature and the key id (SHA-256
// of the public key), which must be the principal's registered key (data-keyid).
"use strict";

(function () {
  var PREFIX = "CUSTODES+ENTRY+KEY+";
  // PKCS#8 PrivateKeyInfo for Ed25519 (RFC 8410) up to the 32-byte seed.
  var PKCS8_HEAD = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65,
    0x70, 0x04, 0x22, 0x04, 0x20];

  function fromBase64(text) {
    var raw = atob(text);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }

  function toBase64(bytes) {
    var raw = "";
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw);
  }

  function fromBase64Url(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    return fromBase64(b64);
  }

  function hex(bytes) {
    return Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  function seedOf(text) {
    var line = text.trim();
    if (line.indexOf(PREFIX) !== 0) throw new Error("this is not an entry key file (CUSTODES+ENTRY+KEY+…)");
    var rest = line.slice(PREFIX.length);
    var plus = rest.indexOf("+");
    if (plus < 1) throw new Error("this entry key file has no name and seed");
    var seed;
    try { seed = fromBase64(rest.slice(plus + 1)); } catch (e) { throw new Error("the key's seed is not base64"); }
    if (seed.length !== 32) throw new Error("the key's seed must be 32 bytes");
    return seed;
  }

  async function sign(text, paeB64) {
    var seed = seedOf(text);
    var der = new Uint8Array(PKCS8_HEAD.length + 32);
    der.set(PKCS8_HEAD, 0);
    der.set(seed, PKCS8_HEAD.length);
    seed.fill(0);
    var key = await crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, true, ["sign"]);
    der.fill(0);
    var jwk = await crypto.subtle.exportKey("jwk", key);
    var publicKey = fromBase64Url(jwk.x);
    var keyid = hex(new Uint8Array(await crypto.subtle.digest("SHA-256", publicKey)));
    var signature = new Uint8Array(await crypto.subtle.sign("Ed25519", key, fromBase64(paeB64)));
    return { keyid: keyid, signature: toBase64(signature) };
  }

  function start() {
    var formEl = document.getElementById("order-form");
    if (!formEl) return;
    var file = document.getElementById("keyfile");
    var status = document.getElementById("sign-status");
    var sigField = document.getElementById("signature");
    var keyidField = document.getElementById("keyid");
    var issue = document.getElementById("issue");
    issue.disabled = true;

    function say(text, bad) {
      status.textContent = text;
      status.className = bad ? "error" : "ok-text";
    }

    file.addEventListener("change", async function () {
      sigField.value = "";
      keyidField.value = "";
      issue.disabled = true;
      if (!file.files || !file.files.length) return;
      try {
        var signed = await sign(await file.files[0].text(), formEl.dataset.pae);
        if (signed.keyid !== formEl.dataset.keyid) {
          say("This key (" + signed.keyid.slice(0, 16) + "…) is not your registered key (" +
            formEl.dataset.keyid.slice(0, 16) + "…); pick your own key file.", true);
          return;
        }
        sigField.value = signed.signature;
        keyidField.value = signed.keyid;
        issue.disabled = false;
        say("Signed with your key " + signed.keyid.slice(0, 16) + "…. Confirm below, then issue the order.", false);
      } catch (err) {
        say("Could not sign: " + (err && err.message ? err.message : err), true);
      } finally {
        file.value = "";  // the page keeps no handle on the key file
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
