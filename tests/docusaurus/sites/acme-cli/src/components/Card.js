import React from 'react';

// A feature card as many sites have: its text comes in as string props.
export default function Card({title, description}) {
  return (
    <div className="card">
      <p><strong>{title}</strong></p>
      <p>{description}</p>
    </div>
  );
}
