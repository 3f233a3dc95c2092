// dunscan page enhancements. The page works without this file: the check is a plain form post,
// a tapped mark jumps to its reason, and the text-size link sets its cookie on the server.
"use strict";

if ("serviceWorker" in navigator) {
  // Registered from the root so the worker's scope covers the share target action.
  window.addEventListener("load", () => {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {
      // Without a worker the page still works online; installing simply is not offered.
    });
  });
}

const TEXT_SIZE_COOKIE = "dunscan_text";
const TEXT_SIZE_MAX_AGE = 400 * 24 * 3600;

function largeTextChosen() {
  return document.cookie.split("; ").includes(`${TEXT_SIZE_COOKIE}=large`);
}

function showTextSize(large) {
  document.documentElement.classList.toggle("large-text", large);
  const toggle = document.getElementById("text-size");
  if (toggle) {
    toggle.setAttribute("aria-pressed", large ? "true" : "false");
  }
}

document.addEventListener("DOMContentLoaded", () => {
  // A page from the service worker's cache was rendered without the cookie: apply it here.
  showTextSize(largeTextChosen());
  const toggle = document.getElementById("text-size");
  if (toggle) {
    toggle.addEventListener("click", (event) => {
      // Switch in place: following the link would leave the result page.
      event.preventDefault();
      const large = !document.documentElement.classList.contains("large-text");
      document.cookie = large
        ? `${TEXT_SIZE_COOKIE}=large; Path=/; Max-Age=${TEXT_SIZE_MAX_AGE}; SameSite=Lax`
        : `${TEXT_SIZE_COOKIE}=; Path=/; Max-Age=0; SameSite=Lax`;
      showTextSize(large);
    });
  }

  // A tap on a marked phrase opens its explanation (a hover tooltip never shows on a phone).
  for (const link of document.querySelectorAll("a[data-explain]")) {
    const dialog = document.getElementById(link.dataset.explain);
    if (!dialog || typeof dialog.showModal !== "function") {
      continue; // the link still jumps to the reason in the list
    }
    link.addEventListener("click", (event) => {
      event.preventDefault();
      dialog.showModal();
    });
  }
  for (const dialog of document.querySelectorAll("dialog.explain")) {
    dialog.querySelector("[data-close]")?.addEventListener("click", () => dialog.close());
    // A tap outside the card (on the backdrop) closes it too.
    dialog.addEventListener("click", (event) => {
      if (event.target === dialog) {
        dialog.close();
      }
    });
  }

  for (const form of document.querySelectorAll("form.check-form")) {
    form.addEventListener("submit", () => {
      const button = form.querySelector("button[type=submit]");
      if (button) {
        // Stops a second tap from sending the message twice while the check runs.
        button.disabled = true;
        button.textContent = "正在检查…";
      }
    });
  }
  // Coming back to the page (browser back button) must not leave the button disabled.
  window.addEventListener("pageshow", () => {
    for (const button of document.querySelectorAll("form.check-form button[type=submit]")) {
      button.disabled = false;
      button.textContent = "检查";
    }
  });
});
