// The sign-in form: email and password; when the API answers `otp_required` (the password was
// right and the account has two-step verification) the code prompt appears and the same request
// is sent again with the authenticator code, or with a recovery code. Error messages are the
// problem `detail` the API gives.
//
// Below it, single sign-on: the email's domain finds the organisation's connection (one: the
// browser goes to its identity provider; several: a button each). A password sign-in refused
// with `sso_required` brings the email down there. The provider's way back (`#/sso/<ticket>`,
// shell.js) ends in `finishSso`, which trades the ticket and signs in as a password does.

import { discoverSso, exchangeSsoTicket, login } from "./auth.js";
import { h } from "./dom.js";
import { humaniseSeconds } from "./format.js";
import { ApiError, describeError, isAbort } from "./http.js";
import { emailDomain, protocolName, ssoRequiredMessage, startUrlOf } from "./sso.js";
import { showNotice } from "./widgets.js";

const $ = (selector) => /** @type {HTMLElement} */ (document.querySelector(selector));

const ui = {
  form: /** @type {HTMLFormElement} */ ($("#login-form")),
  email: /** @type {HTMLInputElement} */ ($("#login-email")),
  password: /** @type {HTMLInputElement} */ ($("#login-password")),
  otpPrompt: $("#otp-prompt"),
  otp: /** @type {HTMLInputElement} */ ($("#login-otp")),
  otpLabel: $("#login-otp-label"),
  otpHelp: $("#otp-help"),
  useRecovery: /** @type {HTMLInputElement} */ ($("#login-use-recovery")),
  submit: /** @type {HTMLButtonElement} */ ($("#login-submit")),
  error: $("#login-error"),
  notice: $("#login-notice"),
  ssoForm: /** @type {HTMLFormElement} */ ($("#sso-form")),
  ssoEmail: /** @type {HTMLInputElement} */ ($("#sso-email")),
  ssoSubmit: /** @type {HTMLButtonElement} */ ($("#sso-submit")),
  ssoMessage: $("#sso-error"),
  ssoChoices: $("#sso-choices"),
  ssoChoiceList: $("#sso-choice-list"),
};

const SSO_SUBMIT_LABEL = "Continue";

/** @type {AbortController|null} the discovery in flight */
let ssoLookup = null;

/** An authenticator code: six (or up to eight) digits, spaces allowed. */
export function isTotpCode(text) {
  return /^\d{6,8}$/.test(String(text).replace(/\s+/g, ""));
}

/**
 * The body of the login request from what was typed: the code goes as `otp` when it is an
 * authenticator code and the recovery box is not ticked, else as `recovery_code`.
 * @returns {{email: string, password: string, otp?: string, recovery_code?: string}}
 */
export function loginRequest({ email, password, code = "", recovery = false }) {
  const request = { email: email.trim(), password };
  const typed = code.trim();
  if (!typed) return request;
  if (!recovery && isTotpCode(typed)) return { ...request, otp: typed.replace(/\s+/g, "") };
  return { ...request, recovery_code: typed };
}

function showError(message) {
  ui.error.textContent = message ?? "";
  ui.error.hidden = !message;
  if (message) ui.form.setAttribute("aria-describedby", "login-error");
  else ui.form.removeAttribute("aria-describedby");
}

function showOtpPrompt(shown) {
  ui.otpPrompt.hidden = !shown;
  ui.otp.required = shown;
  if (!shown) {
    ui.otp.value = "";
    ui.useRecovery.checked = false;
    updateOtpLabel();
  }
}

function updateOtpLabel() {
  const recovery = ui.useRecovery.checked;
  ui.otpLabel.textContent = recovery ? "Recovery code" : "Authenticator code";
  ui.otpHelp.textContent = recovery
    ? "Enter one of your recovery codes; each works once."
    : "Enter the 6-digit code from your authenticator app.";
  ui.otp.inputMode = recovery ? "text" : "numeric";
  ui.otp.autocomplete = recovery ? "off" : "one-time-code";
}

function busy(on) {
  ui.submit.disabled = on;
  ui.submit.textContent = on ? "Signing in\u2026" : ui.otpPrompt.hidden ? "Sign in" : "Verify";
  ui.form.setAttribute("aria-busy", String(on));
}

/** A message for a refused sign-in: the API's detail, with the wait when locked. */
export function loginMessage(error) {
  if (!(error instanceof ApiError)) return describeError(error);
  if (error.status === 0) return `The API could not be reached: ${error.detail || error.title}`;
  let message = error.detail || error.title;
  if (error.code === "locked" || error.status === 429) {
    if (Number.isFinite(error.retryAfter) && !/\d/.test(message)) {
      message = `${message} Try again in ${humaniseSeconds(Math.max(1, error.retryAfter))}.`;
    }
  }
  return message;
}

async function submit(event) {
  event.preventDefault();
  if (ui.submit.disabled) return;
  const asking = !ui.otpPrompt.hidden;
  if (asking && !ui.otp.value.trim()) {
    showError("Enter the code to continue.");
    ui.otp.focus();
    return;
  }
  const request = loginRequest({
    email: ui.email.value,
    password: ui.password.value,
    code: asking ? ui.otp.value : "",
    recovery: ui.useRecovery.checked,
  });
  showError("");
  showNotice(ui.notice, "");
  busy(true);
  try {
    await login(request);
    // Signed in: the page moves on to the dashboard; nothing secret stays in the form.
    ui.password.value = "";
    showOtpPrompt(false);
  } catch (error) {
    const code = error instanceof ApiError ? error.code : "";
    if (code === "otp_required") {
      showOtpPrompt(true);
      if (asking) showError(loginMessage(error));
      ui.otp.focus();
    } else if (code === "invalid_otp") {
      showOtpPrompt(true);
      showError(loginMessage(error));
      ui.otp.value = "";
      ui.otp.focus();
    } else if (code === "sso_required") {
      // The organisation signs its members in through its identity provider, not a password.
      showOtpPrompt(false);
      ui.password.value = "";
      offerSso(request.email, ssoRequiredMessage(error));
    } else if (code === "invalid_credentials") {
      showOtpPrompt(false);
      showError(loginMessage(error));
      ui.password.value = "";
      ui.password.focus();
    } else {
      showError(loginMessage(error));
    }
  } finally {
    busy(false);
  }
}

// ---- single sign-on -----------------------------------------------------------------------

/**
 * A message under the single sign-on email: an error (`kind` "error") or a word on what
 * happens next ("info"); none hides it.
 */
function showSsoMessage(message, kind = "error") {
  ui.ssoMessage.textContent = message ?? "";
  ui.ssoMessage.hidden = !message;
  ui.ssoMessage.dataset.kind = kind;
  ui.ssoMessage.classList.toggle("problem", kind === "error");
  ui.ssoMessage.classList.toggle("info", kind !== "error");
  if (message) ui.ssoForm.setAttribute("aria-describedby", "sso-error");
  else ui.ssoForm.removeAttribute("aria-describedby");
}

function ssoBusy(on, label = "Looking up\u2026") {
  ui.ssoSubmit.disabled = on;
  ui.ssoSubmit.textContent = on ? label : SSO_SUBMIT_LABEL;
  ui.ssoForm.setAttribute("aria-busy", String(on));
  for (const button of ui.ssoChoiceList.querySelectorAll("button")) button.disabled = on;
}

/** A button per connection to choose from; none hides the list. */
function showSsoChoices(options) {
  ui.ssoChoiceList.replaceChildren(...options.map((option) => h("li", {}, choiceButton(option))));
  ui.ssoChoices.hidden = !options.length;
}

function choiceButton(option) {
  const id = String(option.connection_id ?? "");
  const about = [option.org_name, protocolName(option.protocol)].filter(Boolean).join(" \u00b7 ");
  const button = h(
    "button",
    { type: "button", class: "button choice", "data-connection-id": id },
    h("span", { class: "choice-name" }, String(option.name || id)),
    about ? h("span", { class: "sub" }, about) : null,
  );
  button.addEventListener("click", () => goToProvider(option));
  return button;
}

/** Leave for the connection's identity provider (this window; the API sends the browser back). */
function goToProvider(option) {
  const name = String(option.name || option.org_name || option.connection_id || "your identity provider");
  ssoBusy(true, "Redirecting\u2026");
  showSsoMessage(`Taking you to ${name}\u2026`, "info");
  window.location.assign(startUrlOf(option).href);
}

function stopLookup() {
  ssoLookup?.abort();
  ssoLookup = null;
}

async function discover(event) {
  event.preventDefault();
  if (ui.ssoSubmit.disabled) return;
  const email = ui.ssoEmail.value.trim();
  showSsoChoices([]);
  const domain = emailDomain(email);
  if (!domain) {
    showSsoMessage("Enter your work email address, such as ada@example.com.");
    ui.ssoEmail.focus();
    return;
  }
  showSsoMessage("");
  stopLookup();
  const mine = new AbortController();
  ssoLookup = mine;
  ssoBusy(true);
  let options;
  try {
    options = await discoverSso(email, { signal: mine.signal });
  } catch (error) {
    if (isAbort(error) || ssoLookup !== mine) return;
    ssoLookup = null;
    ssoBusy(false);
    showSsoMessage(loginMessage(error));
    return;
  }
  if (ssoLookup !== mine) return;
  ssoLookup = null;
  ssoBusy(false);
  if (!options.length) {
    showSsoMessage(
      `No single sign-on is set up for ${domain}. Sign in with your password, or ask your organisation\u2019s administrator.`,
    );
    ui.ssoEmail.focus();
  } else if (options.length === 1) {
    goToProvider(options[0]);
  } else {
    showSsoChoices(options);
    /** @type {HTMLButtonElement|null} */ (ui.ssoChoiceList.querySelector("button"))?.focus();
  }
}

/** Bring the single sign-on form forward with the email filled in and why. */
function offerSso(email, message) {
  stopLookup();
  ssoBusy(false);
  ui.ssoEmail.value = email;
  showSsoChoices([]);
  showSsoMessage(message, "info");
  ui.ssoForm.scrollIntoView?.({ block: "nearest" });
  ui.ssoSubmit.focus();
}

function resetSso() {
  stopLookup();
  showSsoChoices([]);
  showSsoMessage("");
  ssoBusy(false);
}

/**
 * Finish a single sign-on on the way back from the identity provider: trade the ticket and
 * sign in (the session's listeners then move the page on, as after a password). A refused
 * ticket is explained in the sign-in form's error line.
 * @param {string} ticket
 * @returns {Promise<boolean>} whether the session started
 */
export async function finishSso(ticket) {
  resetLogin("Completing single sign-on\u2026");
  busy(true);
  ssoBusy(true, "Signing in\u2026");
  try {
    if (!ticket) {
      throw new ApiError(400, "Bad request", "The address holds no sign-on ticket. Start the single sign-on again.");
    }
    await exchangeSsoTicket(ticket);
    showNotice(ui.notice, "");
    return true;
  } catch (error) {
    showNotice(ui.notice, "");
    showError(`Single sign-on failed: ${loginMessage(error)}`);
    return false;
  } finally {
    busy(false);
    ssoBusy(false);
  }
}

export function initLogin() {
  ui.form.addEventListener("submit", submit);
  ui.ssoForm.addEventListener("submit", discover);
  ui.ssoEmail.addEventListener("input", () => {
    // Another email is another lookup: what was found for the last one goes.
    if (ssoLookup) {
      stopLookup();
      ssoBusy(false);
    }
    showSsoChoices([]);
    showSsoMessage("");
  });
  // Back from the identity provider's page with the Back button, the page may be the one left:
  // its buttons are not left waiting.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) {
      resetSso();
      busy(false);
    }
  });
  ui.useRecovery.addEventListener("change", () => {
    updateOtpLabel();
    ui.otp.focus();
  });
  // Another email or password is another first step: the code prompt goes until asked again.
  for (const input of [ui.email, ui.password]) {
    input.addEventListener("input", () => {
      if (!ui.otpPrompt.hidden) {
        showOtpPrompt(false);
        busy(false);
      }
    });
  }
}

/**
 * Get the form ready to be shown: a message on top (why the user is here), no secrets left.
 * @param {string} [notice] e.g. "You have signed out."
 */
export function resetLogin(notice) {
  ui.password.value = "";
  showOtpPrompt(false);
  showError("");
  showNotice(ui.notice, notice ?? "");
  busy(false);
  resetSso();
}

/** Focus the first field that needs typing. */
export function focusLogin() {
  if (!ui.otpPrompt.hidden) ui.otp.focus();
  else if (ui.email.value) ui.password.focus();
  else ui.email.focus();
}
