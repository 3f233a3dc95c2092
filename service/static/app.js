// dunscan page enhancements. The page works without this file: the check is a plain form post.
"use strict";

if ("serviceWorker" in navigator) {
  // Registered from the root so the worker's scope covers the share target action.
  window.addEventListener("load", () => {
    navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {
      // Without a worker the page still works online; installing simply is not offered.
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
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
  const verdict = document.getElementById("verdict");
  if (verdict) {
    verdict.scrollIntoView({ block: "start" });
  }
});
