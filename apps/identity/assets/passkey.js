/*
 * Identity's passkey forms (passkey-views.ts): a form with `data-webauthn="create"` or `"get"` carries the
 * server's options as JSON in `data-options`. On submit this script asks the browser's WebAuthn API
 * (navigator.credentials), writes the answer as JSON (base64url fields, the shape @simplewebauthn/server
 * reads) into the hidden `response` field, and submits the form. Plain ES2020, no dependencies.
 */
/* global document, navigator, window */
(function () {
  'use strict';

  function toBytes(base64url) {
    var base64 = base64url.replace(/-/g, '+').replace(/_/g, '/');
    var binary = window.atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = '';
    for (var i = 0; i < bytes.length; i += 1) binary += String.fromCharCode(bytes[i]);
    return window.btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function descriptors(list) {
    return (list || []).map(function (item) {
      return { id: toBytes(item.id), type: item.type || 'public-key', transports: item.transports };
    });
  }

  async function create(options) {
    var publicKey = Object.assign({}, options, {
      challenge: toBytes(options.challenge),
      user: Object.assign({}, options.user, { id: toBytes(options.user.id) }),
      excludeCredentials: descriptors(options.excludeCredentials),
    });
    var credential = await navigator.credentials.create({ publicKey: publicKey });
    var response = credential.response;
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      response: {
        clientDataJSON: toBase64url(response.clientDataJSON),
        attestationObject: toBase64url(response.attestationObject),
        transports: typeof response.getTransports === 'function' ? response.getTransports() : [],
      },
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
    };
  }

  async function get(options) {
    var publicKey = Object.assign({}, options, {
      challenge: toBytes(options.challenge),
      allowCredentials: descriptors(options.allowCredentials),
    });
    var credential = await navigator.credentials.get({ publicKey: publicKey });
    var response = credential.response;
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      response: {
        clientDataJSON: toBase64url(response.clientDataJSON),
        authenticatorData: toBase64url(response.authenticatorData),
        signature: toBase64url(response.signature),
        userHandle: response.userHandle ? toBase64url(response.userHandle) : undefined,
      },
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
    };
  }

  function attach(form) {
    var status = form.querySelector('.passkey-status');
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      if (!window.PublicKeyCredential || !navigator.credentials) {
        status.textContent = 'This browser does not support passkeys.';
        return;
      }
      var options = JSON.parse(form.getAttribute('data-options'));
      var ceremony = form.getAttribute('data-webauthn') === 'create' ? create : get;
      status.textContent = 'Waiting for your passkey…';
      ceremony(options).then(
        function (answer) {
          form.elements.namedItem('response').value = JSON.stringify(answer);
          status.textContent = 'Checking…';
          form.submit();
        },
        function (error) {
          status.textContent =
            'The passkey was not used (' + (error && error.name ? error.name : 'error') + '). Try again.';
        },
      );
    });
  }

  document.querySelectorAll('form[data-webauthn]').forEach(attach);
})();
