// The sign-in form: email and password; when the API answers `otp_required` (the password was
// right and the account has two-step verification) the code prompt appears and the same request
// is sent again with the authenticator code, or with a recovery code. Error messages are the
// problem `detail` the API gives.

import { login } from "./auth.js";
import { humaniseSeconds } from "./format.js";
import { ApiError, describeError } from "./http.js";
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
};

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

export function initLogin() {
  ui.form.addEventListener("submit", submit);
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
}

/** Focus the first field that needs typing. */
export function focusLogin() {
  if (!ui.otpPrompt.hidden) ui.otp.focus();
  else if (ui.email.value) ui.password.focus();
  else ui.email.focus();
}
