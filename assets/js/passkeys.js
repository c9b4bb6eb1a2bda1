// Gatehouse passkeys: the only script that calls navigator.credentials.
// Buttons carry data-passkey="register|signin|second" with data-begin and
// data-finish URLs; the server answers begin with WebAuthn options (binary
// fields as base64url) and finish with {"redirect": URL} or {"error": text}.
// Served as a fingerprinted asset: no inline script, the CSP stays strict.
(function () {
  "use strict";

  function fromB64url(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function toB64url(buf) {
    const bytes = new Uint8Array(buf);
    let bin = "";
    for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function decodeDescriptors(list) {
    return (list || []).map(function (c) { return Object.assign({}, c, { id: fromB64url(c.id) }); });
  }

  function creationOptions(o) {
    const pk = Object.assign({}, o.publicKey);
    pk.challenge = fromB64url(pk.challenge);
    pk.user = Object.assign({}, pk.user, { id: fromB64url(pk.user.id) });
    pk.excludeCredentials = decodeDescriptors(pk.excludeCredentials);
    return { publicKey: pk };
  }

  function requestOptions(o) {
    const pk = Object.assign({}, o.publicKey);
    pk.challenge = fromB64url(pk.challenge);
    pk.allowCredentials = decodeDescriptors(pk.allowCredentials);
    return { publicKey: pk };
  }

  function credentialJSON(cred) {
    const r = cred.response;
    const response = { clientDataJSON: toB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toB64url(r.attestationObject);
      if (r.getTransports) response.transports = r.getTransports();
    }
    if (r.authenticatorData) response.authenticatorData = toB64url(r.authenticatorData);
    if (r.signature) response.signature = toB64url(r.signature);
    if (r.userHandle) response.userHandle = toB64url(r.userHandle);
    return {
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      response: response,
    };
  }

  async function post(url, body) {
    const res = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
    let data = {};
    try { data = await res.json(); } catch (e) { /* not JSON */ }
    if (!res.ok) throw new Error(data.error || "Something went wrong. Try again.");
    return data;
  }

  function showError(msg) {
    const el = document.getElementById("passkey-status");
    if (!el) return;
    el.textContent = msg;
    el.hidden = false;
  }

  async function run(btn) {
    const kind = btn.dataset.passkey;
    const body = {};
    if (kind === "register") {
      const name = document.getElementById("passkey-name");
      body.name = name ? name.value : "";
    }
    if (kind === "signin") body.next = btn.dataset.next || "/";
    const options = await post(btn.dataset.begin, body);
    let cred;
    try {
      cred = kind === "register"
        ? await navigator.credentials.create(creationOptions(options))
        : await navigator.credentials.get(requestOptions(options));
    } catch (e) {
      throw new Error("The passkey was not used (" + (e && e.name ? e.name : "cancelled") + ").");
    }
    if (!cred) throw new Error("The passkey was not used.");
    const done = await post(btn.dataset.finish, credentialJSON(cred));
    window.location.assign(done.redirect || "/");
  }

  document.addEventListener("click", function (ev) {
    const btn = ev.target.closest ? ev.target.closest("button[data-passkey]") : null;
    if (!btn) return;
    ev.preventDefault();
    if (!window.PublicKeyCredential) {
      showError("This browser does not support passkeys.");
      return;
    }
    btn.disabled = true;
    btn.setAttribute("aria-busy", "true");
    run(btn).catch(function (e) {
      showError(e.message);
    }).finally(function () {
      btn.disabled = false;
      btn.removeAttribute("aria-busy");
    });
  });
})();
