// Passkeys (WebAuthn): "Sign in with a passkey" and the username field's
// autofill on the login page, "Add a passkey" on the security page. The
// server sends the options as JSON with binary fields in base64url; the
// browser's API takes and returns ArrayBuffers. Both buttons are rendered
// hidden and shown here only where the browser has WebAuthn.
(function () {
  "use strict";

  if (!window.PublicKeyCredential || !navigator.credentials) {
    return;
  }

  function toBuffer(s) {
    var b64 = s.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) {
      b64 += "=";
    }
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) {
      out[i] = bin.charCodeAt(i);
    }
    return out.buffer;
  }

  function toBase64url(buf) {
    if (!buf) {
      return null;
    }
    var bytes = new Uint8Array(buf);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) {
      bin += String.fromCharCode(bytes[i]);
    }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (d) {
      return Object.assign({}, d, { id: toBuffer(d.id) });
    });
  }

  function creationOptions(o) {
    var pk = Object.assign({}, o.publicKey);
    pk.challenge = toBuffer(pk.challenge);
    pk.user = Object.assign({}, pk.user, { id: toBuffer(pk.user.id) });
    pk.excludeCredentials = descriptors(pk.excludeCredentials);
    return pk;
  }

  function requestOptions(o) {
    var pk = Object.assign({}, o.publicKey);
    pk.challenge = toBuffer(pk.challenge);
    pk.allowCredentials = descriptors(pk.allowCredentials);
    return pk;
  }

  function credentialJSON(cred) {
    var r = cred.response;
    var response = { clientDataJSON: toBase64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toBase64url(r.attestationObject);
      response.transports = typeof r.getTransports === "function" ? r.getTransports() : [];
    } else {
      response.authenticatorData = toBase64url(r.authenticatorData);
      response.signature = toBase64url(r.signature);
      response.userHandle = toBase64url(r.userHandle);
    }
    return {
      id: cred.id,
      rawId: toBase64url(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      response: response,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
    };
  }

  // post sends JSON to the server and resolves with its JSON answer; a
  // refusal rejects with the server's message.
  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
    }).then(function (resp) {
      return resp
        .json()
        .catch(function () {
          return { error_description: "The server's answer could not be read. Please try again." };
        })
        .then(function (data) {
          if (!resp.ok) {
            var err = new Error(data.error_description || "Something went wrong. Please try again.");
            err.signIn = data.sign_in;
            throw err;
          }
          return data;
        });
    });
  }

  // browserMessage says in words why the browser's dialog ended without a
  // passkey.
  function browserMessage(err) {
    if (err && err.name === "NotAllowedError") {
      return "No passkey was used. You can try again.";
    }
    if (err && err.name === "InvalidStateError") {
      return "This device already holds a passkey for your account.";
    }
    if (err && err.name === "AbortError") {
      return "";
    }
    return (err && err.message) || "The passkey could not be used.";
  }

  function say(status, message) {
    if (status) {
      status.textContent = message;
    }
  }

  function setUpLogin(box) {
    var button = box.querySelector("[data-passkey-login-button]");
    var status = box.querySelector("[data-passkey-status]");
    var returnTo = document.querySelector('form[action="/login"] input[name="return_to"]');
    var pending = null;

    function signIn(conditional) {
      if (pending) {
        pending.abort();
      }
      var controller = new AbortController();
      pending = controller;
      return post("/login/passkey/begin", { conditional: conditional })
        .then(function (options) {
          var req = { publicKey: requestOptions(options), signal: controller.signal };
          if (conditional) {
            req.mediation = "conditional";
          }
          return navigator.credentials.get(req);
        })
        .then(function (cred) {
          say(status, "Checking your passkey…");
          return post("/login/passkey/finish", {
            credential: credentialJSON(cred),
            return_to: returnTo ? returnTo.value : "/",
          });
        })
        .then(function (answer) {
          window.location.assign(answer.redirect || "/");
        })
        .catch(function (err) {
          if (controller.signal.aborted) {
            return;
          }
          say(status, browserMessage(err));
        });
    }

    box.hidden = false;
    button.addEventListener("click", function () {
      say(status, "");
      signIn(false);
    });
    if (typeof PublicKeyCredential.isConditionalMediationAvailable === "function") {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
        if (ok) {
          signIn(true);
        }
      });
    }
  }

  function setUpAdd(box) {
    var button = box.querySelector("[data-passkey-add-button]");
    var status = box.querySelector("[data-passkey-status]");
    var name = box.querySelector("#passkey-new-name");
    box.hidden = false;
    button.addEventListener("click", function () {
      button.disabled = true;
      say(status, "Follow your browser's prompt to create the passkey…");
      post("/account/passkeys/register/begin")
        .then(function (options) {
          return navigator.credentials.create({ publicKey: creationOptions(options) });
        })
        .then(function (cred) {
          say(status, "Saving your passkey…");
          return post("/account/passkeys/register/finish", {
            name: name ? name.value : "",
            credential: credentialJSON(cred),
          });
        })
        .then(function () {
          window.location.assign("/account/security#passkeys");
          window.location.reload();
        })
        .catch(function (err) {
          if (err.signIn) {
            window.location.assign(err.signIn);
            return;
          }
          button.disabled = false;
          say(status, browserMessage(err));
        });
    });
  }

  document.querySelectorAll("[data-passkey-login]").forEach(setUpLogin);
  document.querySelectorAll("[data-passkey-add]").forEach(setUpAdd);
})();
